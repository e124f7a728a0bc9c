"""The records latentrun reads back (a run's meta.json, a launch's sweep.yaml), checked against the
JSON Schemas in `schemas/` as configs are, so that a damaged field is named in one line instead
of surfacing as a TypeError in whichever command reads it first."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from latentrun.core.errors import RunError
from latentrun.core.keys import SCHEMA_PATH
from latentrun.core.text import printable

SCHEMAS_DIR = SCHEMA_PATH.parent  # inside the package: an installed wheel carries its schemas
META_SCHEMA, SWEEP_SCHEMA = "meta.schema.json", "sweep.schema.json"


@functools.cache
def _validator(schema_name: str) -> Any:
    import jsonschema  # here: `list` reads many records and should not pay for it before the first

    schema = json.loads((SCHEMAS_DIR / schema_name).read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def check(document: Any, schema_name: str, where: Path) -> None:
    """RunError naming `where`, the first damaged field and what it should be, when `document` does
    not fit its schema."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(schema_name).iter_errors(document))
    if error is None:
        return
    field = ".".join(str(part) for part in error.absolute_path) or "the top level"
    found = printable(repr(error.instance), limit=60)
    raise RunError(f"{where}: damaged: {field} is {found}: {_expected(error)}")


def _expected(error: Any) -> str:
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return "expected " + " or ".join(wanted)
    return error.message.replace(repr(error.instance), "it", 1)
