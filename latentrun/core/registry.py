"""Name → constructor tables, one per component kind.

A registry is a dict with a decorator on top: no scopes, no parents, no import magic. Components
register themselves when `latentrun.config.components` imports their modules, and `build(section)` turns a
config section (`{name: ..., **params}`) into an object, passing any runtime-only arguments (the
vocabulary size, the model's parameters, ...) as keywords. An entry is any callable: a variant is a
function that fixes some arguments and passes the rest straight through (timm's way), so the
registry keeps no parameter lists of its own; the schema says what a section may hold.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Registry:
    """Maps registry names to constructors for one kind of component (models, losses, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Decorator that files a constructor under `name`; a second entry of one name is an error."""

        def decorate(fn: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = fn
            return fn

        return decorate

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., Any]:
        """The constructor filed under `name`; KeyError naming the closest known name otherwise."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise KeyError(f"unknown {self.kind} '{name}'{hint}; known: {', '.join(self.names())}") from None

    def build(self, section: Mapping[str, Any], **runtime: Any) -> Any:
        """Construct the component a config section names, with its parameters as keywords."""
        params = {key: value for key, value in section.items() if key != "name"}
        return self.get(section["name"])(**params, **runtime)

    def __contains__(self, name: object) -> bool:
        return name in self._entries


MODELS = Registry("model")
DATASETS = Registry("dataset")
LOSSES = Registry("loss")
OPTIMIZERS = Registry("optimizer")
SCHEDULERS = Registry("scheduler")
CURRICULA = Registry("curriculum")

REGISTRIES: dict[str, Registry] = {
    "model": MODELS,
    "dataset": DATASETS,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "scheduler": SCHEDULERS,
    "curriculum": CURRICULA,
}
