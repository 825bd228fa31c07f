"""A llama.cpp grammar (GBNF) under which the model can write any text but only the product's own numbers.

Digits may appear only as one of the allowed number strings, each followed by a non-digit, so "1,7"
cannot grow into "1,75" and no number outside the list can be started.
"""

from __future__ import annotations

import json
from collections.abc import Iterable


def numbers_only_grammar(allowed_numbers: Iterable[str]) -> str:
    literals = sorted({number for number in allowed_numbers if number}, key=lambda n: (-len(n), n))
    lines = ["root ::= piece*", "piece ::= [^0-9] | number [^0-9]" if literals else "piece ::= [^0-9]"]
    if literals:
        # json.dumps gives a double-quoted literal with backslashes and quotes escaped, as GBNF wants.
        lines.append("number ::= " + " | ".join(json.dumps(literal, ensure_ascii=False) for literal in literals))
    return "\n".join(lines) + "\n"
