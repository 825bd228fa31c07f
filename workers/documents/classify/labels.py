"""The labels file: ``label: description`` lines; a label may have several (e.g. one per language)."""

from __future__ import annotations

from pathlib import Path

DEFAULT_LABELS_PATH = Path(__file__).parents[1] / "data" / "labels.txt"


class LabelsFileError(ValueError):
    pass


def read_labels(path: Path) -> dict[str, list[str]]:
    """Descriptions per label, labels in file order. Blank lines and ``#`` comments are skipped."""
    labels: dict[str, list[str]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label, colon, description = line.partition(":")
        if not colon or not label.strip() or not description.strip():
            raise LabelsFileError(f"{path}:{number}: expected 'label: description', got {line[:60]!r}")
        labels.setdefault(label.strip(), []).append(description.strip())
    if len(labels) < 2:
        raise LabelsFileError(f"{path}: needs at least two labels, found {sorted(labels)}")
    return labels
