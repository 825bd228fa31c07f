"""Text generators: requests in, generations out, several sequences decoded together.

A backend registers itself by name (``generator.llama_cpp``); the products pipeline (and any other
capability, e.g. an abstractive document summary) asks for one by that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
