"""The lab's golden image: Debian bookworm from debootstrap
(scripts/golden-image/), tagged by the hash of its recipe, built once.
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

from fellesdrift.files import locked as _locked
from fellesdrift.lab.podman import configure_podman
from fellesdrift.lab.runner import _LOCK_NAME, LabError, _podman
from fellesdrift.paths import CACHE_DIR, ROOT
from fellesdrift.progress import RUNNING, Progress, silent

#: Repository of the golden image; the tag is the recipe hash.
IMAGE_REPO = "localhost/fellesdrift-golden"


#: The golden image recipe: every file under this folder goes into the image tag.
RECIPE_DIR = ROOT / "scripts" / "golden-image"


def recipe_hash(recipe_dir: Path = RECIPE_DIR) -> str:
    """12 hex digits over every recipe file's relative path, mode and content."""
    files = sorted(
        p
        for p in recipe_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", "~"))
    )
    if not files:
        raise LabError(f"golden image recipe not found under {recipe_dir}")
    h = hashlib.sha256()
    for p in files:
        rel = p.relative_to(recipe_dir).as_posix()
        h.update(f"{rel}\0{p.stat().st_mode & 0o111:o}\0".encode())
        h.update(p.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:12]


def golden_image_ref(recipe_dir: Path = RECIPE_DIR) -> str:
    """The image reference the current recipe builds (whether or not it exists yet)."""
    return f"{IMAGE_REPO}:{recipe_hash(recipe_dir)}"


def _image_exists(ref: str) -> bool:
    return _podman("image", "exists", ref, what="podman image exists", check=False).returncode == 0


def golden_image(progress: Progress = silent) -> str:
    """Return the golden image ref, building and importing it only if that tag is missing.

    The root filesystem tarball is cached under CACHE_DIR by the same hash, so after
    ``podman rmi`` the image comes back with one ``podman import``. ``progress`` hears each
    step of a build (phase ``image``, the image as the item).
    """
    digest = recipe_hash()
    ref = f"{IMAGE_REPO}:{digest}"

    def say(step: str) -> None:
        progress("image", ref, RUNNING, step)

    if _image_exists(ref):
        return ref
    configure_podman()
    cache = CACHE_DIR / "golden"
    with _locked(cache / _LOCK_NAME):
        if _image_exists(ref):  # another process built it while we waited
            return ref
        tarball = cache / f"rootfs-{digest}.tar"
        if not tarball.exists():
            _build_rootfs(tarball, cache / "debs", say)
            for old in cache.glob("rootfs-*.tar"):
                if old != tarball:
                    old.unlink(missing_ok=True)
        else:
            say(f"using cached root filesystem {tarball.name}")
        say(f"importing {ref}")
        _podman(
            "import",
            "--change",
            'CMD ["/sbin/init"]',
            "--change",
            "STOPSIGNAL=SIGRTMIN+3",
            "--change",
            f"LABEL fellesdrift.recipe={digest}",
            "--message",
            f"fellesdrift golden image, recipe {digest}",
            str(tarball),
            ref,
            what=f"podman import of {tarball}",
        )
    progress("image", ref, "ok", f"golden image {ref} ready")
    return ref


def _build_rootfs(tarball: Path, debcache: Path, say: Callable[[str], None]) -> None:
    script = RECIPE_DIR / "build.sh"
    say(f"building golden image root filesystem ({script.relative_to(ROOT)}, about a minute)")
    tail: list[str] = []
    with subprocess.Popen(
        ["bash", str(script), str(tarball), str(debcache)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            tail = [*tail[-29:], line]
            if line.startswith("==> "):
                say(line[4:])
        rc = proc.wait()
    if rc != 0 or not tarball.exists():
        raise LabError(f"golden image build ({script}) failed (exit {rc}):\n" + "\n".join(tail))
