"""Invoice, order and other reference numbers: a code after a keyword that announces it, in en, de, fr,
es or it (``Invoice no. INV-2024-0001``, ``Rechnungsnummer: 2024-0815``, ``facture n° FA-1182``,
``pedido nº 55123``, ``ordine n. 4471/B``), or a code with a prefix that says what it is
(``INV-2024-0001``, ``PO-88213``). The code must contain a digit; the keyword is not part of the entity."""

from __future__ import annotations

import re
from collections.abc import Iterator

from workers.documents.entities.entity import EntityDict, make_entity

# Keyword stems by kind; a stem may be followed by letters ("Rechnungsnummer", "Bestellnr").
_KEYWORDS = {
    "INVOICE_NUMBER": [
        "invoice", "inv", "bill", "rechnung", "rg", "facture", "fact", "factura", "fra", "fattura", "ft",
    ],
    "ORDER_NUMBER": [
        "order", "purchase order", "po", "bestellung", "bestell", "auftrag", "auftrags", "commande", "cde",
        "cmd", "pedido", "orden de compra", "ordine", "ord",
    ],
    "REFERENCE_NUMBER": [
        "reference", "ref", "our ref", "your ref", "case", "claim", "policy", "customer", "account no",
        "ticket", "contract", "referenz", "aktenzeichen", "az", "vorgang", "kunden", "vertrags", "schaden",
        "police", "versicherungsschein", "ticket", "référence", "réf", "dossier", "sinistre", "client",
        "contrat", "referencia", "expediente", "póliza", "siniestro", "cliente", "contrato",
        "riferimento", "rif", "pratica", "sinistro", "polizza", "contratto",
    ],
}
_NUMBER_WORD = (r"(?:number|no|nr|nº|n°|n\.?º|num|núm|número|numero|numéro|nummer|n|#)\.?")
# "Ihre Kundennummer lautet 88231904", "il suo codice cliente è 77120433".
_COPULA = r"(?:is|lautet|ist|est|es|è)(?!\w)"
_CODE = r"(?P<code>(?=[A-Z0-9/.-]*\d)[A-Z0-9][A-Z0-9/.-]*[A-Z0-9])"
_NUMBER_SUFFIX = re.compile(r"(?i)(?:nummer|nr|number|numéro|número|numero)$")
_YEAR = re.compile(r"(?:19|20)\d\d")
_PREFIXED = {
    "INVOICE_NUMBER": ["INV", "RE", "RG", "FA", "FAC", "FACT", "FT", "FV"],
    "ORDER_NUMBER": ["PO", "ORD", "BE", "BST", "CMD", "PED", "ORDN", "SO"],
}


def _keyword_pattern() -> re.Pattern[str]:
    alternatives = []
    for label, stems in _KEYWORDS.items():
        # Short stems ("inv", "po", "ref") only as whole words: "investment", "possible", "refund" are not.
        words = "|".join(rf"{re.escape(stem)}\b" if len(stem) <= 4 else rf"{re.escape(stem)}[\w-]*"
                         for stem in sorted(stems, key=len, reverse=True))
        alternatives.append(rf"(?P<{label}>{words})")
    keyword = "|".join(alternatives)
    return re.compile(
        rf"(?i:\b(?:{keyword})\.?(?P<marker>[ \u00a0]+{_NUMBER_WORD})?(?P<copula>[ \u00a0]+{_COPULA})?)"
        rf"[ \u00a0]*(?P<colon>[:#])?[ \u00a0]*"
        rf"{_CODE}(?![\w/-])"
    )


_KEYWORD_CODE = _keyword_pattern()
_PREFIX_CODE = re.compile(
    r"(?<![\w/-])(?P<prefix>[A-Z]{2,4})-(?=[A-Z0-9/-]*\d{3})[A-Z0-9]+(?:[-/][A-Z0-9]+)*(?![\w/-])"
)


def _plausible_code(code: str, announced: bool) -> bool:
    """A bare number after a keyword ("order 300 items", "invoice 2024") is a count or a year unless a
    number word or a colon announces it."""
    if not code.isdigit():
        return len(code) >= 3
    if announced:
        return len(code) >= 2
    return len(code) >= 4 and not _YEAR.fullmatch(code)


def find_references(text: str) -> Iterator[EntityDict]:
    seen: set[int] = set()
    for match in _KEYWORD_CODE.finditer(text):
        label = next(name for name in _KEYWORDS if match.group(name))
        code = match.group("code")
        announced = (match.group("marker") or match.group("copula") or match.group("colon")
                     or _NUMBER_SUFFIX.search(match.group(label)))
        if not _plausible_code(code, bool(announced)):
            continue
        start, end = match.span("code")
        seen.add(start)
        yield make_entity(text, start, end, label, "rules")
    for match in _PREFIX_CODE.finditer(text):
        if match.start() in seen:
            continue
        prefix = match.group("prefix")
        label = next((name for name, prefixes in _PREFIXED.items() if prefix in prefixes), "REFERENCE_NUMBER")
        yield make_entity(text, match.start(), match.end(), label, "rules")
