"""Components registered by name (as spaCy does), so a pipeline is built from config and plugins can add or
replace components without touching Slimline's code.

A component is found, by its name, in this order:
1. registered in this process with ``@register(name)`` (Slimline's own modules, or a plugin module imported
   through ``SLIMLINE_PLUGINS``);
2. an entry point of that name in the ``slimline_components`` group of any installed package (Slimline
   declares its own in pyproject.toml; a plugin package declares its own the same way): loaded on first use,
   so building a pipeline imports only the components it names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, TypeVar

Factory = TypeVar("Factory", bound=Callable[..., Any])

COMPONENTS_GROUP = "slimline_components"
PIPELINES_GROUP = "slimline_pipelines"

_FACTORIES: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def decorator(factory: Factory) -> Factory:
        _FACTORIES[name] = factory
        return factory

    return decorator


def factory(name: str) -> Callable[..., Any]:
    if name not in _FACTORIES:
        found = entry_points(group=COMPONENTS_GROUP, name=name)
        for entry_point in found:
            _FACTORIES[name] = entry_point.load()
            break
        else:
            raise KeyError(f"no component registered as {name!r}; known: {sorted(known_names())}")
    return _FACTORIES[name]


def create(name: str, **config: Any) -> Any:
    return factory(name)(**config)


def known_names() -> set[str]:
    return set(_FACTORIES) | {entry_point.name for entry_point in entry_points(group=COMPONENTS_GROUP)}


def pipeline_names() -> set[str]:
    """The kinds of work that have a pipeline (``slimline_pipelines`` entry points), without importing any."""
    return {entry_point.name for entry_point in entry_points(group=PIPELINES_GROUP)}


def pipeline_builder(name: str) -> Callable[..., Any]:
    """A kind's pipeline builder ``(settings, tier) -> Pipeline``, imported on first use."""
    for entry_point in entry_points(group=PIPELINES_GROUP, name=name):
        return entry_point.load()
    raise KeyError(f"no pipeline for {name!r}; known: {sorted(pipeline_names())}")


def load_plugins(modules: Iterable[str]) -> None:
    """Import plugin modules; importing them runs their ``@register`` decorators."""
    for module in modules:
        importlib.import_module(module)
