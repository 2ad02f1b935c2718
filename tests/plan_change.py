"""The change issue 12's done-when plans, shared by its unit and end-to-end tests: Vinje gets a
new site (skule) and its town hall's link goes from 1000/1000 to 500/500 Mbit/s."""

from __future__ import annotations

import shutil
from pathlib import Path

from fellesdrift.inventory import load as inventory


def changed_copy(original: Path, folder: Path) -> str:
    """Copy the inventories ``original`` to ``folder`` and make the change there; the new
    site's LAN prefix (in the inventories' address plan, whatever its second octet)."""
    shutil.copytree(original, folder)
    radhus = inventory.load([original]).municipality("vinje").sites[0]
    lan = ".".join(radhus.lan_prefix.split(".")[:2]) + ".3.0/24"
    vinje = folder / "vinje.yaml"
    text = vinje.read_text(encoding="utf-8")
    assert "down_mbps: 1000\n      up_mbps: 1000" in text
    vinje.write_text(text.replace("down_mbps: 1000\n      up_mbps: 1000",
                                  "down_mbps: 500\n      up_mbps: 500") + f"""\
  - id: skule
    name: Vinje skule
    kind: school
    address: Skulevegen 1, 3890 Vinje
    users: 15
    lan_prefix: {lan}
    link:
      access: fibre
      provider: vtk
      down_mbps: 300
      up_mbps: 100
      vlan: 103
""", encoding="utf-8")
    return lan
