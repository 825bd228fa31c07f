"""The prompt carries only the product's own facts, and asks for plain text that starts with the name.

One worked example (an invented product, not among the samples) shows a small model the shape of the
answer: prose, the name first, the facts and nothing else. It sits in the prompt's shared prefix, so the
generator computes it once per batch.
"""

from __future__ import annotations

from schemas import Product
from workers.products.templates import TemplateRenderer, brand_of

SYSTEM = (
    "You write short, factual product descriptions for an online shop. Use only the facts given. "
    "Do not add numbers, measurements, certifications, guarantees, origins or health and environmental "
    "claims that are not in the facts. Write 2 to 4 sentences of plain text: no lists, no headings, no links."
)

_EXAMPLE_FACTS = """Product: Alba Stoneware Mug
Brand: Terra Nova
Category: kitchen
Facts:
- Material: stoneware
- Capacity: 350 ml
- Colour: sage green
- Finish: reactive glaze
Tone: friendly

Write the description in English. Start with the product name."""

_EXAMPLE_ANSWER = (
    "Alba Stoneware Mug by Terra Nova is a sage green stoneware mug with a reactive glaze, so every piece "
    "looks a little different. It holds 350 ml, enough for a generous coffee or tea."
)


def product_messages(product: Product, language: str, renderer: TemplateRenderer) -> tuple[tuple[str, str], ...]:
    """Facts first and the language last, so that a product's prompts share their longest prefix. The facts
    are written as the template writes them in that language (labels, units, decimal commas)."""
    brand_key, brand = brand_of(product, renderer.vocabulary)
    facts = [fact for key, fact in zip(product.attributes, renderer.facts(product, language), strict=True)
             if key != brand_key]
    language_name = renderer.vocabulary.languages[language]["name"]
    lines = [f"Product: {product.name}"]
    if brand:
        lines.append(f"Brand: {brand}")
    if product.category:
        lines.append(f"Category: {product.category}")
    lines += ["Facts:"] + [f"- {label}: {value}" for label, value in facts]
    if product.tone:
        lines.append(f"Tone: {product.tone}")
    lines.append(f"\nWrite the description in {language_name}. Start with the product name.")
    return (("system", SYSTEM), ("user", _EXAMPLE_FACTS), ("assistant", _EXAMPLE_ANSWER), ("user", "\n".join(lines)))
