"""Input contracts: one pydantic model per kind of work, one queue per kind.

The checked-in JSON Schema files in ``schemas/json/`` are generated from these
models (``python -m schemas.export``) for producers written in other languages.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator

ItemId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._:/@+-]+$"),
    Field(description="The producer's own id; results are keyed by it, so resending an id never adds a row."),
]
Metadata = dict[str, str | int | float | bool | None]


class Kind(str, enum.Enum):
    """A kind of work: each has its own queue, task and contract."""

    documents = "documents"
    transactions = "transactions"
    products = "products"


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


def _encodable_utf8(text: str) -> str:
    """Reject lone surrogates, which JSON can carry as escapes but UTF-8 cannot store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"is not valid Unicode (position {error.start}: unpaired surrogate)") from None
    if "\x00" in text:
        raise ValueError("contains a NUL character")
    return text


class Document(_Contract):
    """A document from a back-office system; Slimline detects its language and extracts entities."""

    id: ItemId
    text: str = Field(description="The document's text, UTF-8. Size limit: SLIMLINE_MAX_DOCUMENT_CHARS.")
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}$")] | None = Field(
        default=None, description="ISO 639 code if the producer knows it; detected otherwise."
    )
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _text_is_usable(cls, text: str, info: ValidationInfo) -> str:
        _encodable_utf8(text)
        if not text.strip():
            raise ValueError("is empty")
        max_chars = (info.context or {}).get("max_document_chars")
        if max_chars is not None and len(text) > max_chars:
            raise ValueError(f"is too long: {len(text)} characters, the limit is {max_chars}")
        return text


class Transaction(_Contract):
    """A payment to flag (or not) in real time.

    ``channel`` is free text; the values the risk model knows are ``card_present``, ``online``,
    ``transfer`` and ``atm``. Numeric ``metadata`` fields carry the bank's own signals (a device
    score, a PCA component...) and become model features when the training data has them.
    A timestamp without a time zone is taken as UTC.
    """

    class Merchant(_Contract):
        """Where a card was used: the acceptor's name and its ISO 18245 merchant category code."""

        name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
        category_code: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] = Field(
            description="ISO 18245 merchant category code (MCC), four digits, e.g. \"5411\" for grocery stores."
        )

    id: ItemId
    account_id: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    amount: Decimal = Field(
        gt=-(10**12), lt=10**12, description="Amount in the currency's major unit, as a JSON string or number."
    )
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    timestamp: datetime = Field(description="When the payment happened (ISO 8601); without a time zone, UTC.")
    merchant: Merchant | None = Field(default=None, description="Card payments: the merchant and its MCC.")
    counterparty: Annotated[str, StringConstraints(max_length=500)] | None = None
    counterparty_iban: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    channel: Annotated[str, StringConstraints(max_length=50)] | None = None
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    metadata: Metadata = Field(default_factory=dict)

    @field_validator("timestamp")
    @classmethod
    def _naive_means_utc(cls, timestamp: datetime) -> datetime:
        return timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=timezone.utc)


class Product(_Contract):
    """A product whose description is generated in several languages."""

    id: ItemId
    name: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    attributes: dict[str, str] = Field(
        default_factory=dict,
        description="Facts about the product (material, colour, capacity…), in the source language; a `brand` "
        "attribute is kept verbatim. Numbers use a decimal point (`1.7 L`); a comma before exactly three digits "
        "groups thousands, any other comma is a decimal comma.",
    )
    localized_attributes: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")], dict[str, str]
    ] = Field(
        default_factory=dict,
        description="Optional values already translated by the producer: language → attribute → value "
        '(e.g. {"de": {"colour": "Anthrazit"}}). They win over Slimline\'s vocabulary.',
    )
    localized_names: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")], Annotated[str, StringConstraints(min_length=1, max_length=500)]
    ] = Field(
        default_factory=dict,
        description="Optional: the product's name in other languages, as the shop sells it there "
        '(e.g. {"de": "Brew 1.7 Wasserkocher"}). Templates print it in that language; where a name has words of '
        "the source language and no localized name, the description is flagged for review (untranslated, part "
        "`name`).",
    )
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]] = Field(min_length=1, max_length=20)
    category: Annotated[str, StringConstraints(max_length=200)] | None = None
    tone: Annotated[str, StringConstraints(max_length=50)] | None = None


INPUT_MODELS: dict[Kind, type[_Contract]] = {
    Kind.documents: Document,
    Kind.transactions: Transaction,
    Kind.products: Product,
}
