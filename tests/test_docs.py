"""The README and docs/ show commands that work: every latentrun command in a fenced bash block
parses, its experiment files exist and validate (with their --set values), and every relative link
reaches a file and a heading that exist. The README stays one screen."""

import argparse
import itertools
import re
import shlex
from pathlib import Path

import pytest
from support import ROOT

from latentrun import cli, config
from latentrun.config import sweep
from latentrun.report import listing_filter

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# Files a page tells the reader to make first (`cp experiments/latent_3digit.yaml experiments/mine.yaml`,
# the trackers guide's smoke copy), validated as the file they copy.
MADE_BY_THE_READER = {
    "experiments/mine.yaml": "experiments/latent_3digit.yaml",
    "tracked.yaml": "experiments/smoke.yaml",
}
_SHELL_OPERATORS = {"&&", "||", "|", ";", ">", "2>", ">>", "<"}


def _bash_lines(page: Path) -> list[tuple[int, str]]:
    lines, in_bash = [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        if line.startswith("```"):
            in_bash = line.strip() == "```bash" if not in_bash else False
        elif in_bash:
            lines.append((number, line))
    return lines


def _expand_braces(word: str) -> list[str]:
    """Bash's `a_{x,y}.yaml` -> a_x.yaml, a_y.yaml (one level is all the pages use)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", word)
    if not match:
        return [word]
    return [word[: match.start()] + choice + word[match.end() :] for choice in match.group(1).split(",")]


def _latentrun_arguments(line: str) -> list[list[str]]:
    """The arguments of each latentrun invocation on a shell line (`python run.py ...`, `latentrun ...`,
    `torchrun ... run.py ...`), up to the next shell operator."""
    words = shlex.split(line, comments=True)
    commands = [list(group) for is_op, group in itertools.groupby(words, _SHELL_OPERATORS.__contains__) if not is_op]
    found = []
    for words in commands:
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value before the command
            words = words[1:]
        if words[:1] == ["latentrun"]:
            found.append(words[1:])
        elif words[:1] in (["python"], ["torchrun"]) and "run.py" in words:
            found.append(words[words.index("run.py") + 1 :])
    return [[expanded for word in arguments for expanded in _expand_braces(word)] for arguments in found]


def _shown_commands() -> list[tuple[str, list[str]]]:
    shown = []
    for page in PAGES:
        for number, line in _bash_lines(page):
            for arguments in _latentrun_arguments(line):
                shown.append((f"{page.relative_to(ROOT)}:{number}", arguments))
    return shown


SHOWN = _shown_commands()


def _check_configs(options: argparse.Namespace) -> None:
    """What `train` and `validate` read before running: each file with each point of its --set sweep."""
    files = options.experiments if options.command == "train" else [options.experiment]
    if options.command == "train" and options.resume is not None:
        return
    for file in files:
        path = ROOT / MADE_BY_THE_READER.get(file, file)
        assert path.is_file(), f"{file}: no such experiment file"
        for point in sweep.points(sweep.parse(options.overrides)):
            config.load(path, point)


def test_the_pages_show_commands():
    """The extraction itself finds what the pages hold (else every check below passes vacuously)."""
    where = {place.split(":")[0] for place, _ in SHOWN}
    assert {"README.md", "docs/guides/commands.md", "docs/guides/sweeps.md", "docs/results.md"} <= where
    assert len(SHOWN) > 40
    expanded = [arguments for _, arguments in SHOWN if "experiments/compare_2digit_simple.yaml" in arguments]
    assert expanded and "experiments/compare_2digit_pause.yaml" in expanded[0]  # bash braces expanded


@pytest.mark.parametrize(("place", "arguments"), SHOWN, ids=[place for place, _ in SHOWN])
def test_every_shown_command_parses(place, arguments):
    parser = cli.build_parser("latentrun")
    try:
        options = cli.parse_args(parser, arguments)
    except SystemExit as exit_request:
        assert exit_request.code == 0, f"{place}: {' '.join(arguments)} does not parse"
        return
    if options.command in ("train", "validate"):
        _check_configs(options)
    if options.command == "list" and options.columns:
        listing_filter.check_columns(options.columns.split(","))


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    anchors = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", text).replace(" ", "-"))
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_relative_link_reaches_its_file_and_heading(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        linked = (page.parent / file).resolve() if file else page
        assert linked.exists(), f"{page.name}: link to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(linked), f"{page.name}: link to {target}: no such heading"


def test_the_readme_fits_a_screen_and_links_every_guide():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 100
    for page in [*sorted((ROOT / "docs" / "guides").glob("*.md")), ROOT / "docs" / "results.md"]:
        assert f"]({page.relative_to(ROOT)})" in readme, f"README links no {page.relative_to(ROOT)}"


def test_the_experiments_guide_lists_every_shipped_experiment():
    """Its table of files names each YAML in experiments/ (brace forms like `compare_{2,3}digit_{a,b}.yaml`
    count for every file they expand to), and names no file that does not ship."""
    guide = (ROOT / "docs" / "guides" / "experiments.md").read_text()
    listed: set[str] = set()
    for row in re.findall(r"^\| ([^|]*\.yaml`[^|]*) \|", guide, flags=re.M):
        for word in re.findall(r"`([^`]+\.yaml)`", row):
            words = [word]
            while any("{" in w for w in words):
                words = [expanded for w in words for expanded in _expand_braces(w)]
            listed.update(Path(w).stem for w in words)
    shipped = {path.stem for path in (ROOT / "experiments").glob("*.yaml")}
    assert shipped - listed == set(), "experiments the guide's table does not list"
    assert listed - shipped == set(), "files the guide's table lists that do not ship"
