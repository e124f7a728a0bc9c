"""Problem files: Deng et al.'s ICoT lines and plain `a*b` lines in, operand pairs out, and every
malformed line named with its file and line number."""

import hashlib

import pytest
from support import ROOT

from latentrun.task.problems import ProblemFileError, file_digest, parse_line, read_problems

ICOT_4X4 = ROOT.parent / "shared" / "data" / "icot" / "4x4_test.txt"
# The first line of Deng et al.'s 4x4 test set: 2967 * 6361 = 18873087, every number written
# least significant digit first.
FIRST_ICOT_LINE = (
    "7 6 9 2 * 1 6 3 6||7 6 9 2 0 + 0 2 0 8 7 1 ( 7 8 9 0 8 1 ) + 0 0 1 0 9 8 0 ( 7 8 0 1 7 0 1 ) "
    "+ 0 0 0 2 0 8 7 1 #### 7 8 0 3 7 8 8 1"
)


def test_icot_lines_are_read_least_significant_digit_first():
    assert parse_line(FIRST_ICOT_LINE) == (2967, 6361)
    assert parse_line("5 0 0 8 * 3 5 9 7||anything #### 5 6 7 3 6 6 3 6") == (8005, 7953)  # 63664065


@pytest.mark.parametrize(
    "line,pair",
    [("37*45", (37, 45)), ("  37 x 45 ", (37, 45)), ("37 * 45 = 1665", (37, 45)), ("0*9", (0, 9)), ("12×3", (12, 3))],
)
def test_plain_lines_are_read_as_people_write_them(line, pair):
    assert parse_line(line) == pair


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "  # indented comment"])
def test_blank_and_comment_lines_are_skipped(line):
    assert parse_line(line) is None


@pytest.mark.parametrize(
    "line,message",
    [
        ("37*45 = 1666", "it is 1665"),
        ("7 6 * 1 2||x #### 0 0 0", "it is 1407"),  # 67 * 21
        ("37+45", r"expected 'a\*b'"),
        ("3 7 * 4 5 #### 5 6 6 1", "ICoT format"),  # no '||'
        ("1234567890*2", "more than 9 digits"),
        ("٣*4", r"expected 'a\*b'"),  # an Arabic-Indic three: int() would read it, nobody writes it
    ],
)
def test_malformed_lines_say_what_is_wrong(line, message):
    with pytest.raises(ValueError, match=message):
        parse_line(line)


def test_a_file_error_names_the_file_and_the_line(tmp_path):
    path = tmp_path / "problems.txt"
    path.write_text("12*34\n\n# fine so far\n5 6 * 1 2||x #### 0 7 6\n")
    with pytest.raises(ProblemFileError, match=r"problems\.txt:4: the line says 65 \* 21 = 670, but it is 1365"):
        read_problems(path)


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "no such problem file"),
        (b"\xff\xfe\x00", "not a UTF-8 text file"),
        (b"# only a comment\n", "no problems"),
    ],
)
def test_unreadable_files_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "problems.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ProblemFileError, match=message) as error:
        read_problems(path)
    assert "\n" not in str(error.value)


def test_pairs_come_back_in_file_order_with_their_keys(tmp_path):
    path = tmp_path / "problems.txt"
    path.write_text("12*34\n" + FIRST_ICOT_LINE + "\n7*8 = 56\n")
    problems = read_problems(path)
    assert problems.a.tolist() == [12, 2967, 7] and problems.b.tolist() == [34, 6361, 8]
    assert problems.keys() == {12 * 2**32 + 34, 2967 * 2**32 + 6361, 7 * 2**32 + 8}
    assert file_digest(path) == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.skipif(not ICOT_4X4.is_file(), reason="shared/data/icot is not beside this checkout")
def test_deng_4x4_test_set_holds_1000_exactly_4_digit_problems():
    problems = read_problems(ICOT_4X4)
    assert len(problems) == 1000
    assert all(1000 <= value <= 9999 for value in problems.a.tolist() + problems.b.tolist())
    assert (problems.a[0].item(), problems.b[0].item()) == (2967, 6361)
