"""Write the JSON Schema of every event payload and of the envelope under `schemas/json/`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from schemas.envelope import CloudEvent
from schemas.registry import EVENT_TYPES

JSON_DIR = Path(__file__).parent / "json"


def render_all() -> dict[str, str]:
    """File name -> JSON Schema text, for every event type and the envelope."""
    files = {"cloudevent.schema.json": CloudEvent.model_json_schema()}
    for event_type in EVENT_TYPES:
        schema = event_type.model.model_json_schema()
        schema["$id"] = f"https://siaga.dev/schemas/{event_type.schema_file}"
        schema["x-cloudevents-type"] = event_type.type
        files[event_type.schema_file] = schema
    return {name: json.dumps(body, indent=2, sort_keys=True) + "\n" for name, body in files.items()}


def main() -> int:
    """Regenerate the committed schema files; `--check` only reports stale ones."""
    check = "--check" in sys.argv[1:]
    rendered = render_all()
    stale = [
        name
        for name, text in rendered.items()
        if not (JSON_DIR / name).exists() or (JSON_DIR / name).read_text() != text
    ]
    extra = [p.name for p in JSON_DIR.glob("*.json") if p.name not in rendered]
    if check:
        for name in stale + extra:
            print(f"stale: schemas/json/{name}")
        return 1 if stale or extra else 0
    JSON_DIR.mkdir(exist_ok=True)
    for name in extra:
        (JSON_DIR / name).unlink()
    for name, text in rendered.items():
        (JSON_DIR / name).write_text(text)
    print(f"wrote {len(rendered)} schema files to {JSON_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
