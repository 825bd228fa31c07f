"""Products: multilingual descriptions from a small generator, grounded, with a template fallback (README.md)."""
