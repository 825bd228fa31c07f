"""Parts more than one kind of work uses: the small generator, language identification, and reading
numbers and units per language (with the vocabulary they need). Kinds never import each other; they
import from here."""
