"""A regular expression for a large set of literal words, factored into a trie: Python's ``re`` tries the
branches of a flat alternation one by one at every position, which costs seconds on a long document with
hundreds of currency names or lexicon terms; a trie fails at the first character that fits no word."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_END = ""


def trie_pattern(words: Iterable[str], char_pattern: Callable[[str], str] = re.escape) -> str:
    """A pattern (no groups) matching exactly ``words``, preferring the longest at a given position."""
    root: dict[str, dict] = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[_END] = {}
    return _build(root, char_pattern) or "(?!)"


def _build(node: dict[str, dict], char_pattern: Callable[[str], str]) -> str:
    branches = [char_pattern(char) + _build(child, char_pattern) for char, child in sorted(node.items()) if char != _END]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return f"(?:{body})?" if _END in node else body
