"""Text generators: requests in, generations out, several sequences decoded together.

A backend registers itself by name (``generator.llama_cpp``); the products pipeline (and any other
capability, e.g. an abstractive document summary) asks for one by that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from workers.settings import Settings


@dataclass(frozen=True)
class GenerationRequest:
    key: str  # the caller's handle, returned with the generation
    messages: tuple[tuple[str, str], ...]  # chat messages as (role, content)
    max_tokens: int
    seed: int
    prefill: str = ""  # the start of the answer, written by the caller; the model continues it
    greedy: bool = False
    grammar: str | None = None  # GBNF that the continuation must match (llama.cpp grammar syntax)


@dataclass(frozen=True)
class Generation:
    key: str
    text: str  # prefill + continuation
    prompt_tokens: int
    tokens: int  # generated tokens
    finish: str  # "stop" (end of text), "length" (token budget reached) or "error"
    error: str | None = None


class Generator(Protocol):
    name: str  # the model's name, e.g. "SmolLM2-135M-Instruct.Q4_1"
    version: str  # the model package's version or the manifest's version
    sha256: str  # of the model file, from the verified manifest
    threads: int

    def generate(self, requests: list[GenerationRequest]) -> list[Generation]:
        """One generation per request, same order; a request that fails is returned with finish="error"."""
        ...

    def count_tokens(self, text: str) -> int:
        ...


def generator_from_settings(settings: Settings) -> Generator:
    """The configured generator (``SLIMLINE_GENERATOR__BACKEND`` and the ``products_*`` settings): hash-checked
    model, threads sized to the process. Shared by products and the abstractive document summary."""
    from workers import registry

    return registry.create(
        settings.generator.backend, model_path=settings.generator.model_path,
        model_name=settings.generator.model_name, model_version=settings.generator.model_version,
        manifest_dir=settings.generator.model_manifest_dir, model=settings.generator.model,
        cache_dir=settings.generator.cache_dir,
        threads=settings.generator.threads or settings.threads_per_process,
        context_tokens=settings.generator.context_tokens, max_sequences=settings.generator.sequences_in_flight,
        temperature=settings.generator.temperature, top_k=settings.generator.top_k,
        top_p=settings.generator.top_p, repeat_penalty=settings.generator.repeat_penalty,
        runtime_type=settings.generator.runtime_type,
    )
