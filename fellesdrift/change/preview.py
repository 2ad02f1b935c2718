"""The plan's provision part: Pulumi's preview resource by resource (what it would create,
update, replace or delete, with the properties that change), from the engine's events.

:func:`previewer` gives the ``act`` that :func:`fellesdrift.pipeline.job.provision_all` runs on
each stack: the same preview as ``plan`` always made (:func:`.stacks.preview`'s counts), and
each step the engine announced kept per stack. An environment under Pulumi's mocks has no
engine: its stacks list what they would declare, as before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from fellesdrift.provision import stacks as provision

#: Steps that are no change of a resource (the engine also reports these).
_QUIET = {"same", "read", "refresh", "discard", "discard-replaced", "remove-pending-replace"}
#: The type of every resource of a dynamic provider (the lab driver's).
DYNAMIC = "pulumi-python:dynamic:Resource"
#: A value longer than this is shown cut (a key or a certificate says nothing in a review).
_WIDTH = 80


@dataclass(frozen=True)
class Property:
    key: str
    before: str | None  # None: not set before (a create)
    after: str | None  # None: not set after (a delete)

    def __str__(self) -> str:
        return f"{self.key}: {self.before or '∅'} → {self.after or '∅'}"


@dataclass(frozen=True)
class Step:
    """One resource the preview would change."""

    op: str  # create, update, replace, delete, create-replacement …
    type: str
    name: str
    properties: tuple[Property, ...] = ()

    def __str__(self) -> str:
        # A dynamic provider's resources all have one type: their name says what they are.
        return f"{self.op} {self.name}" + ("" if self.type == DYNAMIC else f" ({self.type})")

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "type": self.type, "name": self.name,
                "properties": [{"key": p.key, "before": p.before, "after": p.after}
                               for p in self.properties]}


#: How the engine marks a secret value in a property (pulumi/sdk: resource.SecretSig).
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
#: How a preview marks a value that is known only once applied (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def _masked(value: Any) -> Any:
    if value == UNKNOWN:
        return "(known after apply)"
    if isinstance(value, dict):
        if value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
            return "[secret]"
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def shown(value: Any) -> str:
    """A property's value in one short line; a secret shows as ``[secret]``."""
    value = _masked(value)
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True,
                                                           ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= _WIDTH else text[:_WIDTH - 1] + "…"


def _inputs(state: Any) -> Mapping[str, Any]:
    return (getattr(state, "inputs", None) or {}) if state is not None else {}


def step(meta: auto.StepEventMetadata) -> Step | None:
    """The step of one engine event's metadata (None: no change, or the stack itself)."""
    op = str(getattr(meta.op, "value", meta.op))
    if op in _QUIET or meta.type == "pulumi:pulumi:Stack" or meta.type.startswith(
            "pulumi:providers:"):
        return None
    old, new = _inputs(meta.old), _inputs(meta.new)
    if op == "create":
        keys = sorted(new)
    elif op == "delete":
        keys = []
    else:  # the keys the engine names; a dynamic provider's diff names none: compare inputs
        keys = sorted({d.split(".")[0].split("[")[0] for d in meta.diffs or []}
                      or {k for k in set(old) | set(new) if old.get(k) != new.get(k)})
    # A dynamic provider's own serialised code (``__provider``) says nothing to a reviewer.
    keys = [k for k in keys if not k.startswith("__")]
    props = tuple(Property(k, shown(old[k]) if k in old and op != "create" else None,
                           shown(new[k]) if k in new else None) for k in keys)
    return Step(op, meta.type, meta.urn.rsplit("::", 1)[-1], props)


Preview = Callable[[str, Path, provision.StackSettings], provision.StackResult]


def previewer(steps: dict[str, list[Step]]) -> Preview:
    """A preview of one stack that also keeps each step in ``steps[stack]``."""
    lock = threading.Lock()

    def preview(target: str, inventory: Path, settings: provision.StackSettings
                ) -> provision.StackResult:
        if settings.mocks:
            return provision.preview(target, inventory, settings)
        found: list[Step] = []

        def event(e: auto.EngineEvent) -> None:
            if e.resource_pre_event is not None:
                one = step(e.resource_pre_event.metadata)
                if one is not None:
                    found.append(one)

        stack = provision.open_stack(settings.env, target)
        stack.set_all_config({k: auto.ConfigValue(v) for k, v in
                              provision.stack_config(settings, target, inventory).items()})
        result = stack.preview(color="never", suppress_progress=True, on_event=event)
        with lock:
            steps[stack.name] = found
        return provision.StackResult(stack.name, {str(op): n for op, n in
                                                  result.change_summary.items()})

    return preview
