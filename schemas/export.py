"""Write one JSON Schema file per input contract: ``python -m schemas.export``."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.messages import INPUT_MODELS, Kind

SCHEMA_DIR = Path(__file__).parent / "json"


def schema_text(kind: Kind) -> str:
    schema = INPUT_MODELS[kind].model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"slimline:{kind.value}"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_path(kind: Kind) -> Path:
    return SCHEMA_DIR / f"{kind.value}.schema.json"


def main() -> None:
    for kind in Kind:
        schema_path(kind).write_text(schema_text(kind))
        print(f"wrote {schema_path(kind)}")


if __name__ == "__main__":
    main()
