"""What `up` says at the end: the phase that failed, or that it succeeded, and on how many
hosts."""

from __future__ import annotations

from pathlib import Path

from fellesdrift.cli import app as cli
from fellesdrift.converge import idempotence
from fellesdrift.converge import run as converge
from fellesdrift.pipeline.job import Outcome
from fellesdrift.provision import stacks as provision
from fellesdrift.provision.hosts import Host
from fellesdrift.verify import run as verify

HOST = Host("vinje-radhus-client", "lab-vinje-radhus-client", ("site_client",), "10.104.1.10",
            "ops", 22, "ssh-ed25519 AAAA")


def _converged() -> converge.ConvergeResult:
    return converge.ConvergeResult(status="successful", rc=0, artifacts=Path("/nowhere"),
                                   recap={HOST.name: converge.HostRecap(ok=3)})


def test_a_failed_stack_is_a_failed_run_not_zero_changes() -> None:
    outcome = Outcome([provision.StackResult("lab.core", {}, error="lab.core: forward guard: "
                                             "iptables is not installed")])
    summary = outcome.summary()
    assert not outcome.ok and summary["failed"] == "provision"
    assert cli._summary_line(summary).startswith("up FAILED in provision")


def test_the_first_failed_phase_is_named() -> None:
    outcome = Outcome([provision.StackResult("lab.vinje", {"same": 4})], hosts=[HOST],
                      converge=_converged(), every=10)
    assert outcome.failed == "idempotence"  # the second converge never ran
    outcome.idempotence = idempotence.Idempotence([], [])
    assert outcome.failed == "verify"  # no verdict for the host
    passed = verify.HostVerdict(HOST.name)
    for suite in ("test_site_client", "test_links"):
        passed.add(verify.Case(suite, "test_x", "passed"))
    passed.function = "site_client"  # read by the verify helper's role-suite rule, if present
    outcome.verdicts = {HOST.name: passed}
    assert outcome.failed is None, outcome.verdicts
    line = cli._summary_line(outcome.summary())
    assert line.startswith("up ok: 1 of 10 hosts;"), line


def test_a_neighbour_that_reaches_the_selected_municipality_fails_the_run() -> None:
    outcome = Outcome([], hosts=[HOST], converge=_converged(),
                      idempotence=idempotence.Idempotence([], []), every=10)
    passed = verify.HostVerdict(HOST.name)
    passed.add(verify.Case("test_site_client", "test_x", "passed"))
    passed.function = "site_client"
    outcome.verdicts = {HOST.name: passed}
    # The case names as pytest writes them into the JUnit report: testinfra's host parameter.
    check = "test_no_host_of_another_municipality_is_reachable[ansible://tokke-skule-client]"
    isolated = verify.HostVerdict("tokke-skule-client")
    isolated.add(verify.Case("test_site_client", check, "passed"))
    outcome.columns = {"tokke-skule-client": isolated}
    assert outcome.failed is None
    reached = verify.HostVerdict("tokke-skule-client")
    reached.add(verify.Case("test_site_client", check, "failed"))
    outcome.columns = {"tokke-skule-client": reached}
    assert outcome.failed == "verify (tenancy columns)"
    never = verify.HostVerdict("tokke-skule-client")  # the check never ran
    outcome.columns = {"tokke-skule-client": never}
    assert outcome.failed == "verify (tenancy columns)"
