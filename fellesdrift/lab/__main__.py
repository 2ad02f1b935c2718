"""Tiny entry point for set-up scripts: `python -m fellesdrift.lab configure|build-image|doctor`.
"""

from __future__ import annotations

from fellesdrift.lab.hosts import can_start_host
from fellesdrift.lab.image import golden_image
from fellesdrift.lab.podman import PODMAN_CONF, configure_podman
from fellesdrift.lab.runner import LabError
from fellesdrift.progress import lines


def _main(argv: list[str] | None = None) -> int:
    """Tiny entry point for set-up scripts: `python -m fellesdrift.lab configure|build-image`."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    try:
        if args == ["configure"]:
            configure_podman()
            print(f"{PODMAN_CONF} is current")
        elif args == ["build-image"]:
            configure_podman()
            print(golden_image(progress=lines(print)))
        elif args == ["doctor"]:
            ok, msg = can_start_host()
            print(msg)
            return 0 if ok else 1
        else:
            print("usage: python -m fellesdrift.lab configure|build-image|doctor", file=sys.stderr)
            return 2
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
