"""Tenant isolation of the hosted databases, as a full matrix: on the GIS and the finance
host, every municipality's login tries every municipality's database (over 127.0.0.1, where
each login is allowed into its own). Only the diagonal may connect.

The matrix is recorded in the JUnit report (property ``tenancy``); ``fellesdrift verify``
prints it per service. Passwords travel in the environment of psql only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import psql_attempts

#: The host functions this suite checks (conftest parametrizes it with those hosts only).
FUNCTIONS = ('gis_hosting', 'finance_hosting')

SERVICES = {"gis_hosting": ("gis", "gis_hosting__municipalities"),
            "finance_hosting": ("okonomi", "finance_hosting__municipalities")}


def _conninfo(login: dict[str, Any], database: str) -> str:
    return f"host=127.0.0.1 dbname={database} user={login['login']} connect_timeout=5"


def test_each_login_reaches_its_own_database_and_no_other(
        host: Any, function: str, role_vars: Any, record_property: Any) -> None:
    if function not in SERVICES:
        pytest.skip(f"not a hosting host ({function or 'function unknown'})")
    service, key = SERVICES[function]
    tenants = list(role_vars(function)[key])
    if not tenants:
        pytest.skip("no subscribing municipality")
    pairs = [(a, b) for a in tenants for b in tenants]
    answers = psql_attempts(host, [(a["password"], _conninfo(a, b["database"]))
                                   for a, b in pairs], "select 1")
    connected = {(a["slug"], b["slug"]): rc == 0 and out == "1"
                 for (a, b), (rc, out) in zip(pairs, answers, strict=True)}
    wrong = []
    for a in tenants:
        row = {b["slug"]: connected[a["slug"], b["slug"]] for b in tenants}
        record_property("tenancy", json.dumps({"kind": service, "from": a["slug"], "to": row}))
        wrong += [f"{a['slug']} → {b}: {'connected' if ok else 'refused'}"
                  for b, ok in row.items() if ok != (b == a["slug"])]
    assert not wrong, f"{service}: " + "; ".join(wrong)
