"""A stack's program under Pulumi's own mocks: what it would declare, without the engine or the
driver's real target (an environment with ``mocks: true``, e.g. a Proxmox VE cluster that is
not reachable from here).

The program is the real one (stacks/__main__.py) with the stack's real configuration
(:func:`fellesdrift.provision.stacks.stack_config`); only the engine is replaced: every resource
registration answers with its inputs, and the core's StackReference with the core router's
name. One program at a time (the Pulumi runtime is per process).
"""

from __future__ import annotations

import asyncio
import runpy
import threading
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from fellesdrift.paths import ROOT

PROGRAM = ROOT / "stacks" / "__main__.py"
_ONE_AT_A_TIME = threading.Lock()
STACK_REFERENCE = "pulumi:pulumi:StackReference"


class Recorder(pulumi_mocks.Mocks):
    """Answers every registration with its inputs and keeps (type, name) of each."""

    def __init__(self, env: str) -> None:
        self.env = env
        self.declared: list[tuple[str, str]] = []

    def new_resource(self, args: pulumi_mocks.MockResourceArgs
                     ) -> tuple[str | None, dict[Any, Any]]:
        if args.typ == STACK_REFERENCE:
            # The core's outputs, as a municipality's stack reads them.
            return args.name, {"outputs": {"core_router": f"{self.env}-core-router",
                                           "hosts": []}}
        self.declared.append((args.typ, args.name))
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi_mocks.MockCallArgs) -> tuple[dict[Any, Any], None]:
        return {}, None


def declare(config: dict[str, str]) -> list[tuple[str, str]]:
    """Run the stack program with this configuration under mocks; (type, name) of every
    resource it declares, in order."""
    env, target = config["fellesdrift:env"], config["fellesdrift:target"]
    with _ONE_AT_A_TIME:
        # The stacks are worked on in threads (provision.many); the runtime needs a loop.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        recorder = Recorder(env)
        pulumi.runtime.set_mocks(recorder, project="fellesdrift", stack=f"{env}.{target}",
                                 preview=True)
        pulumi.runtime.set_all_config(config)

        @pulumi.runtime.test  # type: ignore[untyped-decorator]
        def program() -> None:
            runpy.run_path(str(PROGRAM), run_name="__main__")

        try:
            program()
        finally:
            asyncio.set_event_loop(None)
            loop.close()
        return list(recorder.declared)
