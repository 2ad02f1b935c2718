"""The end-to-end tier's shared lab: the fixture inventories stood up once by `fellesdrift up`.

Every e2e module that needs the whole pipeline's result asks for ``pipeline_lab``; the lab
is made by the first of them and taken down at the end of the session (test_up.py also
tests `down` itself). FELLESDRIFT_E2E_REUSE=<env> runs the modules against an existing lab
of that name instead, without making or removing anything (for development).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_INVENTORIES = ROOT / "tests" / "fixtures" / "inventories"


def fellesdrift(*args: str, timeout: int = 2400) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fellesdrift", *args],
                          capture_output=True, text=True, check=False, timeout=timeout)


@dataclass(frozen=True)
class PipelineLab:
    env: str
    inventories: Path
    first_up: dict[str, Any]

    @property
    def lab_dir(self) -> Path:
        return ROOT / ".lab" / self.env


@pytest.fixture(scope="session")
def pipeline_lab() -> Iterator[PipelineLab]:
    reuse = os.environ.get("FELLESDRIFT_E2E_REUSE")
    if reuse:
        yield PipelineLab(reuse, FIXTURE_INVENTORIES, {})
        return
    proc = fellesdrift("up", str(FIXTURE_INVENTORIES), "--env", "e2e", "--json")
    try:
        assert proc.returncode == 0, proc.stderr[-6000:] + proc.stdout[-4000:]
        yield PipelineLab("e2e", FIXTURE_INVENTORIES, json.loads(proc.stdout))
    finally:
        fellesdrift("down", "--env", "e2e")
