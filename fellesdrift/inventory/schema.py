"""JSON Schema for editors, generated from the model, and the modeline that points at it.

Every inventory file starts with a yaml-language-server modeline, e.g. in inventories/::

    # yaml-language-server: $schema=../schema/municipality.schema.json

so editors with the YAML language server (VS Code's YAML extension, Neovim, Helix …) complete
and check fields while typing. The schema files are generated: `fellesdrift schema` writes them,
`fellesdrift schema --check` fails when they are stale, and a unit test keeps them in step.
The schema cannot express everything the loader checks (YAML 1.1 pitfalls, cross-file rules):
`fellesdrift validate` remains the judge.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from fellesdrift.inventory.model import SCHEMA_VERSION, Municipality, OperationsCentre
from fellesdrift.paths import ROOT

SCHEMA_DIR = ROOT / "schema"
MUNICIPALITY_SCHEMA = "municipality.schema.json"
CENTRE_SCHEMA = "operations-centre.schema.json"
MODELS: dict[str, type[BaseModel]] = {MUNICIPALITY_SCHEMA: Municipality,
                                      CENTRE_SCHEMA: OperationsCentre}
MODELINE_PREFIX = "# yaml-language-server: $schema="


def document(name: str) -> dict[str, Any]:
    """The JSON Schema of one kind of inventory file."""
    model = MODELS[name]
    body = model.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$comment": f"Generated from fellesdrift.model ({model.__name__}, schema_version "
                    f"{SCHEMA_VERSION}) by `fellesdrift schema`; do not edit.",
        **body,
    }


def render(name: str) -> str:
    return json.dumps(document(name), indent=2, ensure_ascii=False) + "\n"


def write(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file into ``directory``; returns those whose content changed."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for name in MODELS:
        path = directory / name
        text = render(name)
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed


def stale(directory: Path = SCHEMA_DIR) -> list[Path]:
    """The schema files in ``directory`` that differ from what the model generates."""
    return [directory / name for name in MODELS
            if not (directory / name).exists()
            or (directory / name).read_text(encoding="utf-8") != render(name)]


def schema_name(inventory_file: Path) -> str:
    from fellesdrift.inventory.load import CENTRE_FILE

    return CENTRE_SCHEMA if inventory_file.name == CENTRE_FILE else MUNICIPALITY_SCHEMA


def modeline(inventory_file: Path, directory: Path = SCHEMA_DIR) -> str:
    """The modeline for an inventory file: its schema, relative to the file's folder."""
    target = directory / schema_name(inventory_file)
    relative = os.path.relpath(target.resolve(), inventory_file.resolve().parent)
    return f"{MODELINE_PREFIX}{Path(relative).as_posix()}"
