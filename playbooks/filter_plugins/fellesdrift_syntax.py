"""The roles' filters for writing values in the syntax of their destination: the functions of
fellesdrift/syntax.py (one place for each escape), loaded by Ansible from this folder beside
the playbooks (``| pg_hba_token``, ``| mapfile_string``, ``| nginx_string`` …)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

try:
    from fellesdrift import syntax
except ImportError:  # an ansible-playbook whose Python has not fellesdrift installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from fellesdrift import syntax


class FilterModule:
    def filters(self) -> dict[str, Callable[..., Any]]:
        return dict(syntax.FILTERS)
