"""Name → constructor tables, one per component kind.

A registry is a dict with a decorator on top: no scopes, no parents, no import magic. Components
register themselves when `latentrun.config.components` imports their modules, and `build(section)` turns a
config section (`{name: ..., **params}`) into an object, passing any runtime-only arguments (the
vocabulary size, the model's parameters, ...) as keywords.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any


class Registry:
    """Maps registry names to constructors for one kind of component (models, losses, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., Any]] = {}
        self._runtime_args: dict[str, tuple[str, ...]] = {}

    def register(self, name: str, runtime_args: tuple[str, ...] = ()) -> Callable[[Callable], Callable]:
        """Decorator that files `fn` under `name`.

        `runtime_args` names the constructor parameters that the runner supplies (vocabulary size,
        model parameters, ...) rather than the config; the schema-agreement test skips them.
        """

        def decorate(fn: Callable) -> Callable:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = fn
            self._runtime_args[name] = tuple(runtime_args)
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

    def runtime_args(self, name: str) -> tuple[str, ...]:
        """Constructor parameters of `name` that come from the runner, not the config."""
        self.get(name)
        return self._runtime_args[name]

    def config_params(self, name: str) -> set[str]:
        """Constructor parameters of `name` that its config section must supply."""
        params = inspect.signature(self.get(name)).parameters
        return set(params) - set(self._runtime_args[name])

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
