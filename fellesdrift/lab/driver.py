"""The lab driver's platform side: what `up`, `plan`, `down` and `doctor` need from the lab
(Podman on this machine); the stacks' side is stacks/drivers/lab.py."""

from __future__ import annotations

from fellesdrift.access import keys
from fellesdrift.environment import Environment
from fellesdrift.inventory.model import Inventory
from fellesdrift.lab import hosts, image, podman, routes, teardown
from fellesdrift.progress import lines
from fellesdrift.provision.drivers import Say


class LabDriver:
    name = "lab"

    def prepare(self, env: Environment, model: Inventory, say: Say, build: bool = True
                ) -> dict[str, str]:
        """Podman configured, the golden image (built when ``build``), the lab's key; while
        the lab exists its aggregates are routed unreachable on this machine."""
        podman.configure_podman()
        ref = image.golden_image(progress=lines(say)) if build else image.golden_image_ref()
        _, public_key = keys.lab_keypair(env.name)
        if build:
            routes.add_unreachable_routes(list(model.centre.address_plan.aggregates),
                                          env=env.name)
        return {"image": ref, "authorizedKey": public_key}

    def teardown(self, env: str) -> dict[str, int]:
        return teardown.teardown(env)

    def check(self) -> tuple[bool, str]:
        return hosts.can_start_host()
