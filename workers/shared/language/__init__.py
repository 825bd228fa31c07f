"""Language identification, shared by documents (the language component) and products (the check that a
text is in the language asked for)."""

from collections.abc import Callable

# A language detector: texts in, (language, score) out.
LanguageDetector = Callable[[list[str]], list[tuple[str | None, float | None]]]
