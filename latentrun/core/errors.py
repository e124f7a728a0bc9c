"""The named errors the command line turns into exit statuses, in one torch-free module.

A user mistake (exit 2) or a runtime failure (exit 1) is one of these; anything else is a bug and
keeps its traceback. They live here, below every other package, so that any module can raise one
without importing the package that first needed it (train/ raising ConfigError made config <-> train
a cycle), and so that cli.py can name them all without loading torch.
"""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(Exception):
    """One or more problems with a config, caught once by the CLI and shown without a traceback.

    `.problems` holds one line per problem, 'FILE:LINE: KEY: problem' (or 'FILE: KEY: problem' /
    'FILE: problem' when no line is known); str(err) is the problems joined by newlines.
    """

    def __init__(self, problems: Sequence[str]) -> None:
        # One problem per line is what the CLI prints and tools grep, so no problem may span two.
        self.problems = [p.replace("\r", "\\r").replace("\n", "\\n") for p in problems]
        super().__init__(self.problems)

    def __str__(self) -> str:
        return "\n".join(self.problems)


class RunError(Exception):
    """A run directory that does not exist or is not a latentrun run."""


class ProblemError(ValueError):
    """A `predict` argument that is not a multiplication the task can encode."""


class ProblemFileError(ValueError):
    """A problem file that cannot be read: missing, not text, or a line in neither format."""


class ProbeError(ValueError):
    """A probe request the run cannot answer: no checkpoint, an unknown target, a missing position class."""


class CheckpointError(Exception):
    """A checkpoint that cannot be written, read or applied."""


class PeerError(RuntimeError):
    """Rank 0 failed in a step every rank waited on; rank 0 has already reported why."""


class TrainingDiverged(Exception):
    """Training kept exploding after every allowed rollback; a runtime failure, not a config mistake."""


# What each named error means to the shell; cli.py maps them to core.status's exit codes.
USAGE_ERRORS: tuple[type[Exception], ...] = (ConfigError, RunError, ProblemError, ProblemFileError, ProbeError)
RUNTIME_ERRORS: tuple[type[Exception], ...] = (CheckpointError, PeerError, TrainingDiverged)
