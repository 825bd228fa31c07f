"""Components registered by name (as spaCy does) so a pipeline is built from config, and plugins
can add or replace components without touching Slimline's code."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

Factory = TypeVar("Factory", bound=Callable[..., Any])

_FACTORIES: dict[str, Callable[..., Any]] = {}


def register(name: str) -> Callable[[Factory], Factory]:
    def decorator(factory: Factory) -> Factory:
        _FACTORIES[name] = factory
        return factory

    return decorator


def create(name: str, **config: Any) -> Any:
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"no component registered as {name!r}; known: {sorted(_FACTORIES)}") from None
    return factory(**config)


def load_plugins(modules: Iterable[str]) -> None:
    """Import plugin modules; importing them runs their ``@register`` decorators."""
    for module in modules:
        importlib.import_module(module)
