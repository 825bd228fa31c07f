"""Products: a description per requested language, from the generator when it writes that language
well and its text passes the grounding check, from the template otherwise.

Per product and language:
- a language no template covers: the product is rejected with the reason (nothing half-written is stored);
- a language the configured model does not write well: the template, and the result says so;
- otherwise: generate (all products and languages of the batch decoded together), check, retry once
  greedily, and fall back to the template. Every result is a draft until a person approves it.

Tiers: the compact tier (the default worker) writes what its small model writes well and leaves the rest to
the templates. With SLIMLINE_PRODUCTS__ESCALATE on, a compact result with a template-written language that
the escalated tier's model writes is stored as ``needs_review`` and sent to ``products.escalate``, where a
worker started with ``--tier escalated`` (a bigger model, e.g. overnight) writes the product again; its result
supersedes the compact one as a new version (a higher tier wins for the same content).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from schemas import ItemError, Kind, Product
from workers import registry
from workers.pipelines.base import ItemOutcome, Rejected
from workers.shared.generator import Generation, GenerationRequest, Generator, generator_from_settings
from workers.shared.generator.grammar import numbers_only_grammar
from workers.products.grounding import Finding, GroundingChecker, LengthBounds, ProductFacts, Verdict
from workers.products.prompts import product_messages
from workers.shared.quantities import find_numbers, format_number
from workers.products.templates import TEMPLATE_VERSION, TemplateRenderer
from workers.settings import Settings

# Importing the backends registers them.

log = logging.getLogger(__name__)
_RETRIED = frozenset({"failed_check", "generation_error"})  # not "batch_token_budget": it would not fit either
_SENTENCE_END = re.compile(r"[.!?…](?=\s|$)")


@dataclass
class _Slot:
    """One description to write: a product in one language."""

    item: int
    product: Product
    language: str
    facts: ProductFacts
    attempts: list[dict[str, Any]] = field(default_factory=list)
    text: str | None = None  # set when a generation passed the check
    verdict: Verdict | None = None
    fallback: Finding | None = None


class ProductPipeline:
    kind = Kind.products

    def __init__(self, settings: Settings, tier: str = "compact", generator: Generator | None = None) -> None:
        self.tier = tier
        self.settings = settings
        self.renderer = TemplateRenderer()
        self.checker = GroundingChecker(
            registry.create(settings.language_detector),
            bounds=LengthBounds(settings.products.min_chars, settings.products.max_chars),
            fluff_path=settings.products.fluff_path,
        )
        self.model_languages = frozenset(settings.generator.languages) & self.renderer.languages
        # Languages a template wrote that the escalated tier should write again (none unless escalation is on).
        self.escalated_languages = (frozenset(settings.products.escalated_languages) & self.renderer.languages
                                    if tier == "compact" and settings.products.escalate else frozenset())
        if generator is None and self.model_languages:
            generator = generator_from_settings(settings)
        self.generator = generator
        self.model = generator.name if generator else "templates"
        self.model_version = f"{generator.version}+sha256:{generator.sha256[:16]}" if generator else TEMPLATE_VERSION

    # --- the batch ---------------------------------------------------------------------------

    def __call__(self, items: list[Product]) -> list[ItemOutcome]:
        outcomes: list[ItemOutcome | None] = [None] * len(items)
        slots: list[_Slot] = []
        for index, product in enumerate(items):
            languages = list(dict.fromkeys(product.languages))
            uncovered = [(i, language) for i, language in enumerate(product.languages)
                         if language not in self.renderer.languages]
            if uncovered:
                supported = ", ".join(sorted(self.renderer.languages))
                outcomes[index] = Rejected([
                    ItemError(field=f"languages.{i}", reason=f"no template covers language {language!r} "
                              f"(supported: {supported}); the product was not described in any language")
                    for i, language in uncovered
                ])
                continue
            facts = self.checker.facts(product)
            slots += [_Slot(item=index, product=product, language=language, facts=facts) for language in languages]

        for slot in slots:
            if self.generator is None:
                slot.fallback = Finding("no_generator", "no model is configured (SLIMLINE_GENERATOR__LANGUAGES=[])")
            elif slot.language not in self.model_languages:
                slot.fallback = Finding("language_not_supported_by_model",
                                        f"the configured model ({self.model}) does not write {slot.language} well")
        budget = self.settings.products.batch_token_budget
        budget -= self._attempt([s for s in slots if s.fallback is None], greedy=False, budget=budget)
        retry = [s for s in slots if s.text is None and s.fallback and s.fallback.code in _RETRIED]
        self._attempt(retry, greedy=True, budget=budget)

        for index, product in enumerate(items):
            if outcomes[index] is None:
                outcomes[index] = self._result(product, [s for s in slots if s.item == index])
        return [outcome for outcome in outcomes if outcome is not None]

    def _attempt(self, slots: list[_Slot], *, greedy: bool, budget: int) -> int:
        """Generate for the slots that fit in the token budget, check, keep what passes; returns tokens used."""
        planned: list[tuple[_Slot, GenerationRequest]] = []
        reserved = 0
        for slot in slots:
            request = self._request(slot, greedy)
            if reserved + request.max_tokens > budget:
                if not slot.attempts:  # a skipped retry keeps the reason of the failed attempt
                    slot.fallback = Finding("batch_token_budget", "the batch's "
                                            f"{self.settings.products.batch_token_budget} generated tokens were spent")
                continue
            reserved += request.max_tokens
            planned.append((slot, request))
        if not planned:
            return 0
        assert self.generator is not None
        try:
            generations = self.generator.generate([request for _, request in planned])
        except Exception as error:  # a generator failure must still leave every product a description
            log.exception("generator failed on a batch of %d descriptions", len(planned))
            generations = [Generation(key=r.key, text="", prompt_tokens=0, tokens=0, finish="error",
                                      error=type(error).__name__) for _, r in planned]
        used = 0
        for (slot, request), generation in zip(planned, generations, strict=True):
            used += generation.tokens
            self._judge(slot, request, generation)
        return used

    def _judge(self, slot: _Slot, request: GenerationRequest, generation: Generation) -> None:
        attempt: dict[str, Any] = {"seed": None if request.greedy else request.seed, "greedy": request.greedy,
                                   "tokens": generation.tokens, "finish": generation.finish}
        if generation.finish == "error":
            attempt.update(verdict="error", reasons=[{"code": "generation_error", "detail": generation.error or ""}])
            slot.attempts.append(attempt)
            slot.fallback = Finding("generation_error", generation.error or "")
            return
        text = _clean(generation.text, truncated=generation.finish == "length")
        verdict = self.checker.check(text, slot.product, slot.language, slot.facts)
        # The text of every attempt is kept: a reviewer sees why one fell back, a benchmark can judge it again.
        attempt.update(text=text, verdict="pass" if verdict.passed else "fail",
                       reasons=[f.to_dict() for f in verdict.reasons])
        slot.attempts.append(attempt)
        if verdict.passed:
            slot.text, slot.verdict, slot.fallback = text, verdict, None
        else:
            slot.verdict = verdict
            slot.fallback = Finding("failed_check", ", ".join(verdict.codes))

    def _request(self, slot: _Slot, greedy: bool) -> GenerationRequest:
        product, language = slot.product, slot.language
        constrain = self.settings.products.constrain_numbers
        grammar = numbers_only_grammar(self._allowed_numbers(slot)) if constrain else None
        attempt = len(slot.attempts)
        return GenerationRequest(
            key=f"{product.id}:{language}:{attempt}",
            messages=product_messages(product, language, self.renderer, self.settings.products.prompt),
            max_tokens=self.settings.products.max_new_tokens.get(language, 160),
            seed=_seed(self.settings.products.seed, product.id, language, attempt),
            prefill=product.localized_names.get(language, product.name), greedy=greedy, grammar=grammar,
        )

    def _allowed_numbers(self, slot: _Slot) -> set[str]:
        """The product's numbers as the language writes them, plus as the source wrote them (in codes)."""
        vocabulary = self.renderer.vocabulary
        allowed = set()
        for value in slot.facts.values:
            allowed.add(format_number(value, slot.language, vocabulary))
            allowed.add(format(value, "f"))
        for text in slot.facts.verbatim + [slot.facts.attribute_text]:
            allowed.update(m.raw for m in find_numbers(text, vocabulary.source_language, vocabulary))
        return allowed

    # --- results -----------------------------------------------------------------------------

    def _result(self, product: Product, slots: list[_Slot]) -> dict[str, Any]:
        result: dict[str, Any] = {
            "product_id": product.id,
            "review_status": "draft",
            "languages": [slot.language for slot in slots],
            "descriptions": {slot.language: self._description(slot) for slot in slots},
        }
        rewrite = [slot.language for slot in slots if slot.text is None and slot.language in self.escalated_languages]
        if rewrite:  # the escalated tier's model writes these: send the product on (workers/runtime/batching.py)
            result["review_status"] = "needs_review"
            result["escalation"] = {"tier": "escalated", "languages": rewrite,
                                    "reason": "written by the template; the escalated tier's model writes them"}
        return result

    def _description(self, slot: _Slot) -> dict[str, Any]:
        generator = self.generator
        # On the model path too: the values the prompt could only give in the source language.
        rendered = self.renderer.render(slot.product, slot.language)
        untranslated = [vars(entry) for entry in rendered.untranslated]
        if slot.text is not None and slot.verdict is not None and generator is not None:
            return {
                "text": slot.text, "path": "model", "model": generator.name, "model_sha256": generator.sha256,
                "template_version": None, "verdict": "pass", "reasons": [], "attempts": slot.attempts,
                "detected_language": slot.verdict.detected_language, "untranslated": untranslated,
            }
        assert slot.fallback is not None, "every description without a passing generation has a fallback reason"
        fallback = slot.fallback
        return {
            "text": rendered.text, "path": "template", "model": None, "model_sha256": None,
            "template_version": TEMPLATE_VERSION, "verdict": "not_checked", "reasons": [fallback.to_dict()],
            "attempts": slot.attempts, "detected_language": None, "untranslated": untranslated,
        }

    def warm_up(self) -> dict[str, float]:
        sample = Product(id="warm-up", name="Warm-up Mug", attributes={"capacity": "350 ml", "material": "stoneware"},
                         languages=["en"])
        started = time.perf_counter()
        self.renderer.render(sample, "en")
        timings = {"template_seconds": time.perf_counter() - started}
        if self.generator is not None:
            started = time.perf_counter()
            self.generator.generate([GenerationRequest(key="warm-up", messages=(("user", "Say hello."),),
                                                       max_tokens=4, seed=1)])
            timings["generator_seconds"] = time.perf_counter() - started
        return timings


def _clean(text: str, truncated: bool) -> str:
    """Trim whitespace; a text cut by the token budget keeps its complete sentences only (none: empty)."""
    text = " ".join(text.split())
    if truncated:
        ends = list(_SENTENCE_END.finditer(text))
        text = text[:ends[-1].end()] if ends else ""
    return text


def _seed(base: int, product_id: str, language: str, attempt: int) -> int:
    """A seed per product, language and attempt, the same on every machine and in every batch."""
    digest = hashlib.sha256(f"{base}:{product_id}:{language}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def build_pipeline(settings: Settings, tier: str = "compact") -> ProductPipeline:
    """The compact configuration, or the escalated one: the bigger model (SLIMLINE_PRODUCTS__ESCALATED_MODEL)
    asked to write its languages, with its own token budgets."""
    registry.load_plugins(settings.plugins)
    if tier == "escalated":
        settings = escalated_settings(settings)
    return ProductPipeline(settings, tier=tier)


def escalated_settings(settings: Settings) -> Settings:
    products = settings.products
    generator = settings.generator.model_copy(update={
        "model": products.escalated_model, "model_path": None, "languages": products.escalated_languages,
        "runtime_type": products.escalated_runtime_type})
    return settings.model_copy(update={"products": products.escalated(), "generator": generator})
