"""Prompts: what the model is given to write one product's description in one language.

Two styles (``SLIMLINE_PRODUCTS__PROMPT``), measured against each other in benchmarks/products_generation.py:

- ``plan`` (default): a sentence plan built from the facts, the template's own text in the target language
  (values translated, numbers and units per locale), which the model only rewrites into fluent prose. The
  model does not have to translate, choose facts or invent a sentence shape, so a small model has less
  room to invent; and when the product has no brand, the plan has no brand to fill in.
- ``facts``: the product's facts as a list (labelled and written as the template writes them in that
  language), from which the model writes freely.

Either way there is one worked example in the target language, for an invented product that is not among
the samples, and it has a brand only when the product has one: an example that always said "NAME by BRAND"
taught the model to invent a brand for products without one (issue 16: 9 of 11 texts). The example
answers were written by hand and state only the example's facts.
"""

from __future__ import annotations

from typing import Literal

from schemas import Product
from workers.products.templates import TemplateRenderer, brand_of

PromptStyle = Literal["plan", "facts"]
PROMPT_STYLES: tuple[str, ...] = ("plan", "facts")

_RULES = ("Use only the facts given. Add nothing: no other features, materials, numbers, brands, places, "
          "certifications, guarantees, health or environmental claims, and no opinions.")
SYSTEMS = {
    "plan": "You rewrite product descriptions for an online shop so that they read naturally, in the same "
            f"language. Keep every name, number and unit exactly as written. {_RULES} Plain text, 2 to 4 sentences.",
    "facts": f"You write short, factual product descriptions for an online shop. {_RULES} Plain text, 2 to 4 "
             "sentences: no lists, no headings, no links.",
}

_EXAMPLE_NAME = "Alba Stoneware Mug"
_EXAMPLE_BRAND = "Terra Nova"
_EXAMPLE_ATTRIBUTES = {"material": "stoneware", "capacity": "350 ml", "colour": "green"}
# "{by}" is replaced by the brand phrase when the product has a brand, and by nothing otherwise. The answers name
# no kind of object and no care or use: a small model copied "mug" and "washed by hand" onto a lamp. Nor do they
# say "fabriqué en"/"fabricado en" (made of): the check reads it as an origin ("made in") and models copy it.
_EXAMPLE_ANSWERS = {
    "en": "Alba Stoneware Mug{by} is made of green stoneware. It holds 350 ml.",
    "de": "Alba Stoneware Mug{by} ist aus grünem Steinzeug gefertigt und fasst 350 ml.",
    "fr": "Alba Stoneware Mug{by} est en grès vert et contient 350 ml.",
    "es": "Alba Stoneware Mug{by} es de gres verde y tiene una capacidad de 350 ml.",
    "it": "Alba Stoneware Mug{by} è realizzato in gres verde e contiene 350 ml.",
}
_BY = {"en": " by {brand}", "de": " von {brand}", "fr": " de {brand}", "es": " de {brand}", "it": " di {brand}"}


def _example(with_brand: bool) -> Product:
    attributes = ({"brand": _EXAMPLE_BRAND} if with_brand else {}) | _EXAMPLE_ATTRIBUTES
    return Product(id="prompt-example", name=_EXAMPLE_NAME, attributes=attributes, languages=["en"],
                   category="kitchen")


def _example_answer(language: str, with_brand: bool) -> str:
    answer = _EXAMPLE_ANSWERS.get(language, _EXAMPLE_ANSWERS["en"])
    by = _BY.get(language, _BY["en"]).format(brand=_EXAMPLE_BRAND) if with_brand else ""
    return answer.format(by=by)


def product_messages(product: Product, language: str, renderer: TemplateRenderer,
                     style: str = "plan") -> tuple[tuple[str, str], ...]:
    """System rules, the worked example (question and answer), then this product's question."""
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; known: {', '.join(PROMPT_STYLES)}")
    has_brand = brand_of(product, renderer.vocabulary)[1] is not None
    example = _example(has_brand)
    ask = _plan_request if style == "plan" else _facts_request
    return (("system", SYSTEMS[style]),
            ("user", ask(example, language, renderer)), ("assistant", _example_answer(language, has_brand)),
            ("user", ask(product, language, renderer)))


def _language_name(language: str, renderer: TemplateRenderer) -> str:
    return renderer.vocabulary.languages[language]["name"]


def _plan_request(product: Product, language: str, renderer: TemplateRenderer) -> str:
    plan = renderer.render(product, language).text
    return f"{plan}\n\nRewrite this in fluent {_language_name(language, renderer)}. Start with the product name."


def _facts_request(product: Product, language: str, renderer: TemplateRenderer) -> str:
    """Facts first and the language last, so that a product's prompts share their longest prefix. The facts
    are written as the template writes them in that language (labels, units, decimal commas)."""
    brand_key, brand = brand_of(product, renderer.vocabulary)
    facts = [fact for key, fact in zip(product.attributes, renderer.facts(product, language), strict=True)
             if key != brand_key]
    lines = [f"Product: {product.localized_names.get(language, product.name)}"]
    if brand:
        lines.append(f"Brand: {brand}")
    if product.category:
        lines.append(f"Category: {product.category}")
    lines += ["Facts:"] + [f"- {label}: {value}" for label, value in facts]
    lines.append(f"\nWrite the description in {_language_name(language, renderer)}. Start with the product name.")
    return "\n".join(lines)
