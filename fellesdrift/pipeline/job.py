"""The main job, phase by phase: validate → provision → converge → verify.

Each phase reads only the validated model and what the phase before it declared. The CLI
renders what these functions return; nothing here prints except through ``say``.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fellesdrift import environment
from fellesdrift.access import keys
from fellesdrift.converge import hostvars, idempotence
from fellesdrift.converge import run as converge
from fellesdrift.converge.idempotence import Idempotence
from fellesdrift.environment import Environment
from fellesdrift.errors import FellesdriftError, RefusedError
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import push
from fellesdrift.paths import ROOT, lab_dir
from fellesdrift.pipeline import converged, doctor
from fellesdrift.plan import affected, topology
from fellesdrift.progress import Progress, silent
from fellesdrift.provision import drivers, hosts
from fellesdrift.provision import stacks as provision
from fellesdrift.report import report, status
from fellesdrift.report.report import Written
from fellesdrift.verify import run as verify

Say = Callable[[str], Any]


class SelectionError(RefusedError, ValueError):
    """A selection the user asked for that cannot be applied safely; nothing was applied."""


class PreflightError(FellesdriftError, RuntimeError):
    """A program `up` needs is missing; nothing was made."""

    consequence = "nothing was made"


#: The check of a site client that says whether it reaches another municipality's hosts: run on
#: the other municipalities' clients, it is the column of the network tenancy matrix.
ISOLATION_CHECK = "test_no_host_of_another_municipality_is_reachable"


def preflight() -> None:
    """Before `up` makes anything: every program it runs is here (:data:`doctor.PROGRAMS`)."""
    missing = doctor.missing_programs()
    if missing:
        raise PreflightError(doctor.install_hint(missing))


@dataclass
class Selection:
    core: bool
    municipalities: list[str]
    destroy: list[str] = field(default_factory=list)
    #: The core's stack is applied although the core is not selected: the centre's hosting
    #: is sized from its subscribers (topology.hosting_size), so a selected municipality that
    #: subscribes to a hosted service, or one being removed, changes what the core declares.
    sizes_core: bool = False

    @property
    def targets(self) -> list[str]:
        core = self.core or self.sizes_core
        return ([provision.CORE] if core else []) + self.municipalities

    def hosts(self, model: Inventory, every: list[hosts.Host]) -> list[hosts.Host]:
        """The hosts this selection converges, pushes and verifies: every host when the core
        is selected, else the selected municipalities' hosts and the centre hosts rendered
        from them (:mod:`fellesdrift.affected`)."""
        if self.core:
            return list(every)
        return affected.hosts(model, every, self.municipalities, self.destroy)


def changed_files(base: str) -> list[str]:
    """Files changed since ``base`` (committed, staged or not) and untracked ones."""
    def git(*args: str) -> list[str]:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False)
        if proc.returncode != 0:
            raise SelectionError(f"git {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout.split()

    return sorted(set(git("diff", "--name-only", base)
                      + git("ls-files", "--others", "--exclude-standard")))


def select(model: Inventory, existing: list[str], municipalities: list[str],
           changed: list[str] | None, destroy: list[str], env: str = "lab") -> Selection:
    """Which stacks to act on (pure).

    ``existing``: the targets that have a stack; ``changed``: the files changed in git when
    only changed stacks are wanted (None: not asked). With no choice: the core and every
    municipality. A stack whose inventory file is gone is destroyed only when named in
    ``destroy``; naming it with ``municipalities`` too selects only its removal (the centre
    hosts rendered from it are worked on, nothing else).
    """
    known = {m.slug for m in model.municipalities}
    # `-m core`: the centre's stack (a reserved slug, so never a municipality's), with every
    # host, as a full `up` converges them; CI's fan-out runs it before the municipalities' jobs.
    core = provision.CORE in municipalities
    municipalities = [s for s in municipalities if s != provision.CORE]
    # `-m SLUG --destroy-municipality SLUG`: only that municipality's removal.
    unknown = [s for s in municipalities if s not in known and s not in destroy]
    if unknown:
        raise SelectionError(f"no inventory file for {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
    orphans = sorted(set(existing) - known - {provision.CORE})
    keep_files = [s for s in destroy if s in known]
    if keep_files:
        raise SelectionError(f"--destroy-municipality {', '.join(keep_files)}: its inventory "
                             "file is still there; remove the file first")
    unapproved = [s for s in orphans if s not in destroy]
    if unapproved:
        raise SelectionError(
            f"stack(s) {', '.join(provision.stack_name(env, s) for s in unapproved)} have no "
            "inventory file any more; applying would destroy every site of "
            f"{', '.join(unapproved)}. To do that, add "
            + " ".join(f"--destroy-municipality {s}" for s in unapproved))
    destroy = [s for s in destroy if s in orphans]
    if changed is not None:
        everything = any(f.startswith(("stacks/", "fellesdrift/", "Pulumi.yaml"))
                         or f.endswith("operations-centre.yaml") for f in changed)
        slugs = sorted(known) if everything else sorted(
            {Path(f).stem for f in changed if f.startswith("inventories/")} & known)
        return Selection(core=everything, municipalities=slugs, destroy=destroy,
                         sizes_core=bool(destroy or _subscribes_to_hosting(model, slugs)))
    if municipalities or core:
        chosen = sorted(set(municipalities) & known)
        return Selection(core=core, municipalities=chosen, destroy=destroy,
                         sizes_core=bool(destroy or _subscribes_to_hosting(model, chosen)))
    return Selection(core=True, municipalities=sorted(known), destroy=destroy)


def _subscribes_to_hosting(model: Inventory, slugs: list[str]) -> bool:
    hosted = set(topology.HOSTING_SERVICE.values())
    return any(s.service in hosted for slug in slugs for s in model.municipality(slug).services)


def selection(model: Inventory, env: str, municipalities: list[str], only_changed: bool,
              base: str, destroy: list[str], mocks: bool = False) -> Selection:
    """:func:`select` with the stacks that exist and, if asked, the files git says changed
    (``mocks``: an environment declared under Pulumi's mocks has no stacks)."""
    changed = changed_files(base) if only_changed else None
    return select(model, [] if mocks else provision.stacks(env), municipalities, changed,
                  destroy, env)


def stack_settings(env: Environment, model: Inventory, say: Say, build: bool = True
                   ) -> provision.StackSettings:
    """What the environment's stacks are configured with: its driver prepares this machine
    (the lab: Podman, the golden image when ``build``, the unreachable routes) and says its
    stack configuration."""
    config = drivers.driver(env).prepare(env, model, say, build)
    return provision.StackSettings(env.name, env.driver, config, env.mocks)


def provision_all(selection: Selection, folder: Path, settings: provision.StackSettings,
                  say: Say, workers: int, preview: bool = False,
                  act: Callable[..., provision.StackResult] | None = None,
                  progress: Progress = silent) -> list[provision.StackResult]:
    """Apply (or preview, or ``act``) the core first, then the municipalities concurrently."""
    act = act or (provision.preview if preview else provision.up)
    preview = preview or act is not provision.up

    def one(target: str) -> provision.StackResult:
        say(f"{provision.stack_name(settings.env, target)} …")
        if act is provision.up and target == provision.CORE and not selection.core:
            return provision.up(target, folder, settings, wait=say)  # for sizing: waits its turn
        return act(target, folder, settings)

    results = []
    if provision.CORE in selection.targets:
        results += provision.many(one, [provision.CORE], settings.env, progress=progress)
        if results[0].error and not preview:
            return results
    results += provision.many(one, selection.municipalities, settings.env, workers, progress)
    if not preview:
        for r in results:
            if not r.error:
                hosts.save(settings.env, r.stack, [hosts.Host.from_output(h) for h in r.hosts])
    return results


def destroy_municipalities(env: str, slugs: list[str], say: Say) -> None:
    for slug in slugs:
        say(f"destroying {provision.stack_name(env, slug)} (--destroy-municipality) …")
        provision.destroy(env, slug)
        hosts.forget(env, provision.stack_name(env, slug))


@dataclass
class Outcome:
    stacks: list[provision.StackResult]
    hosts: list[hosts.Host] = field(default_factory=list)
    converge: converge.ConvergeResult | None = None
    #: The second converge right after the first (and the network phase): must change nothing
    #: that is not waived.
    idempotence: Idempotence | None = None
    network: list[push.DeviceResult] = field(default_factory=list)
    #: The routers compared with their intended configuration at the end (dry run).
    in_sync: list[push.DeviceResult] = field(default_factory=list)
    verdicts: dict[str, verify.HostVerdict] = field(default_factory=dict)
    #: After a partial `up`: the other municipalities' site clients, checked for whether they
    #: reach the selected municipalities (the columns of the network tenancy matrix).
    columns: dict[str, verify.HostVerdict] = field(default_factory=dict)
    report: Written | None = None
    seconds: float = 0.0
    #: The hosts of the lab (``hosts`` are those this run worked on).
    every: int = 0
    #: The selection touched no host (e.g. --only-changed with no inventory change).
    idle: bool = False
    #: The hosts of ``hosts`` not converged: their inputs are unchanged since their last
    #: converge, which passed (:mod:`fellesdrift.pipeline.converged`).
    unchanged: list[str] = field(default_factory=list)

    @property
    def failed(self) -> str | None:
        """The first phase that failed (None: the run succeeded)."""
        if any(s.error for s in self.stacks):
            return "provision"
        if self.idle:
            return None
        if not self.hosts:
            return "provision"  # the stacks declared no host
        if self.converge is None or not self.converge.ok:
            return "converge"
        if any(r.status == "failed" for r in self.network):
            return "network"
        if self.idempotence is None or not self.idempotence.ok:
            return "idempotence"
        if not all(r.status == "unchanged" for r in self.in_sync):
            return "network in sync"
        if not all(h.name in self.verdicts and self.verdicts[h.name].ok for h in self.hosts):
            return "verify"
        if not all(_isolated(v) for v in self.columns.values()):
            return "verify (tenancy columns)"
        return None

    @property
    def ok(self) -> bool:
        return self.failed is None

    def summary(self) -> dict[str, Any]:
        rows = []
        conv = self.converge
        for h in self.hosts:
            recap = conv.recap.get(h.name, converge.HostRecap()) if conv else converge.HostRecap()
            verdict = self.verdicts.get(h.name, verify.HostVerdict(h.name))
            unchanged = h.name in self.unchanged
            rows.append({
                "host": h.name, "address": h.address, "groups": list(h.groups),
                "converge": {"ok": recap.ok, "changed": recap.changed, "failed": recap.failed,
                             "unreachable": recap.unreachable, "unchanged": unchanged},
                "verify": {"passed": verdict.passed, "failed": verdict.failed,
                           "skipped": verdict.skipped},
                "ok": (unchanged or (h.name in conv.recap if conv else False))
                and recap.failed == 0 and recap.unreachable == 0 and verdict.ok,
            })
        idem = self.idempotence
        return {
            "ok": self.ok,
            "failed": self.failed,
            "seconds": round(self.seconds, 1),
            "hosts_worked_on": len(self.hosts),
            "hosts_in_lab": self.every,
            "unchanged_hosts": sorted(self.unchanged),
            "stacks": [{"stack": s.stack, "changes": s.changes, "changed": s.changed,
                        "error": s.error} for s in self.stacks],
            "pulumi_changes": sum(s.changed for s in self.stacks),
            "ansible_changed": conv.changed if conv else 0,
            "changed_tasks": [str(t) for t in conv.changed_tasks] if conv else [],
            "idempotent": idem.ok if idem else None,
            "second_run_hosts": idem.rerun if idem else None,
            "second_run_changed": [str(t) for t in idem.changed] if idem else [],
            "waived": [{"task": str(t), "reason": w.reason} for t, w in idem.waived]
            if idem else [],
            "network": [r.as_dict() for r in self.network],
            "network_in_sync": {r.device: r.status == "unchanged" for r in self.in_sync},
            "hosts": rows,
            "tenancy": verify.tenancy({**self.columns, **self.verdicts}),
            "report": str(self.report.html) if self.report else None,
        }


def inventory_for(model: Inventory, env: str) -> tuple[list[hosts.Host], Path]:
    """The lab's hosts as provisioned, trusted, and the Ansible inventory with their role
    variables (the SSH client config .lab/<env>/ssh_config is written beside it)."""
    every, _, path = lab_inventory(model, env)
    return every, path


def lab_inventory(model: Inventory, env: str
                  ) -> tuple[list[hosts.Host], dict[str, dict[str, Any]], Path]:
    """:func:`inventory_for`, with every host's role variables."""
    every = hosts.load(env)
    hosts.trust(env, every)
    hosts.ssh_config(env, every)  # for operators: ssh -F .lab/<env>/ssh_config <host>
    _, public_key = keys.lab_keypair(env)
    variables = hostvars.render(model, env, every, public_key)
    return every, variables, hosts.ansible_inventory(env, every, variables)


def _isolated(verdict: verify.HostVerdict) -> bool:
    """The isolation check ran on this site client and passed."""
    outcomes = {c.outcome for c in verdict.cases if c.check == ISOLATION_CHECK}
    return outcomes == {"passed"}


# --- Every phase records its own status (up, and each phase's command run alone) ------------


def record_converge(env: str, names: list[str], first: converge.ConvergeResult,
                    second: converge.ConvergeResult | None,
                    waivers: list[idempotence.Waiver], every: bool = False,
                    rerun: list[str] | None = None) -> Idempotence | None:
    """Record a converge: with its second run (on the ``rerun`` hosts, None: on every host;
    :func:`idempotence.converge_again`), whether each host converged (idempotent, the
    waivers applied); without one, the hosts the first run failed on, and with ``every`` (`up`,
    whose second run did not happen) every other host as not converged either: a first run
    alone cannot show idempotence. Returns the second run's judgement."""
    if second is None:
        found = [r for r in idempotence.per_host(names, first) if every or (
            r.first is not None and (r.first.failed or r.first.unreachable))]
        if found:
            status.record(env, "converge", status.from_results(found))
        return None
    judged = idempotence.judge(second, waivers, rerun)
    status.record(env, "converge", status.from_results(
        idempotence.per_host(names, first, second, judged)))
    return judged


def record_network(env: str, results: list[push.DeviceResult]) -> None:
    """Record whether each router's running configuration is the intended one: after a dry run
    it is when nothing differs; after a push, when it was pushed (read back) or unchanged."""
    status.record(env, "network", status.from_results(results))


def record_verify(env: str, verdicts: dict[str, verify.HostVerdict]) -> None:
    status.record(env, "verify", status.from_results(verdicts.values()))


#: Called once when `up` ends: with its outcome, or with the exception that ended it.
Done = Callable[[Outcome | None, BaseException | None], Any]


def up(model: Inventory, selection: Selection, environ: Environment, say: Say,
       progress: Progress = silent, workers: int = 3, done: Done | None = None,
       converge_all: bool = False) -> Outcome:
    """:func:`apply`, then ``done`` (the audit log's hook: :mod:`fellesdrift.change.audit`)."""
    try:
        outcome = apply(model, selection, environ, say, progress, workers, converge_all)
    except BaseException as e:
        if done is not None:
            done(None, e)
        raise
    if done is not None:
        done(outcome, None)
    return outcome


def apply(model: Inventory, selection: Selection, environ: Environment, say: Say,
          progress: Progress = silent, workers: int = 3, converge_all: bool = False
          ) -> Outcome:
    """Provision, converge, network, converge again (idempotence), verify; each phase's result
    goes into the lab's status record, and the report is written at the end.

    Converge, network and verify work on the hosts the selection touches
    (:meth:`Selection.hosts`): after `up -m SLUG`, that municipality's hosts and the centre
    hosts rendered from it; the other municipalities' clients are checked for whether they
    reach it. Of those hosts, converge leaves out the ones whose inputs are unchanged since
    their last converge and verify, which passed (:mod:`fellesdrift.pipeline.converged`;
    ``converge_all``: none is left out); the network and verify still work on every one.
    Raises :class:`PreflightError` before anything is made if a program is missing.
    """
    started = time.monotonic()
    env, folder = environ.name, environ.folder
    preflight()
    environment.remember(environ)  # the later commands on this environment read its inventory
    waivers = idempotence.load_waivers()
    settings = stack_settings(environ, model, say)
    outcome = Outcome(provision_all(selection, folder, settings, say, workers,
                                    progress=progress))
    status.record(env, "provision", status.from_results(outcome.stacks))
    if any(r.error for r in outcome.stacks):
        outcome.seconds = time.monotonic() - started
        return outcome
    destroy_municipalities(env, selection.destroy, say)
    every, variables, inventory = lab_inventory(model, env)
    outcome.every = len(every)
    outcome.hosts = selection.hosts(model, every)
    names = [h.name for h in outcome.hosts]
    if not names and not selection.core:
        say("the selection touches no host: nothing to converge or verify")
        outcome.idle = True
        outcome.seconds = time.monotonic() - started
        return outcome
    if len(names) != len(every):
        say(f"working on {len(names)} of {len(every)} hosts: {', '.join(names)}")
    digests = converged.digests(variables, outcome.hosts)
    reprovisioned = {h["name"] for r in outcome.stacks if r.changed for h in r.hosts}
    outcome.unchanged = [] if converge_all else converged.unchanged(
        env, digests, names, reprovisioned)
    todo = [n for n in names if n not in outcome.unchanged]

    def converge_on(chosen: list[str]) -> converge.ConvergeResult:
        return converge.run(env, inventory, len(chosen), progress=progress,
                            limit=None if len(chosen) == len(every) else ",".join(chosen))

    def converge_again(chosen: list[str]) -> converge.ConvergeResult:
        say(f"converging again on the {len(chosen)} of {len(todo)} hosts the first run or "
            "the network changed: a second run must change nothing …")
        return converge_on(chosen)

    if outcome.unchanged:
        say(f"{len(outcome.unchanged)} of {len(names)} hosts are unchanged since their last "
            "converge, which passed, and their verify with it: not converged again "
            "(`up --converge-all` converges them anyway)")
    if todo:
        say(f"converging {len(todo)} host(s) …")
        first = converge_on(todo)
    else:
        first = converge.ConvergeResult("skipped", 0, lab_dir(env) / "ansible")
    outcome.converge = first
    touched: set[str] = set()
    if first.ok:
        say("configuring the network (netmiko) …")
        outcome.network = push.run(model, env, outcome.hosts, workers=8, progress=progress)
        touched = {r.name for r in outcome.network if r.changed}
        # A router left out as unchanged whose running configuration had to be put right:
        # it converges now, as its first run, so the second run below judges it too.
        late = [n for n in outcome.unchanged if n in touched]
        if late:
            say(f"the network changed {len(late)} router(s) left out as unchanged: converging "
                "them …")
            extra = converge_on(late)
            first = outcome.converge = converge.merge([first, extra]) if first.recap else extra
            outcome.unchanged = [n for n in outcome.unchanged if n not in late]
            todo += late
    if first.ok:
        second, rerun = idempotence.converge_again(todo, first, waivers, converge_again,
                                                   touched)
        if not rerun and todo:
            say("the first run and the network changed nothing: no second run is needed")
        outcome.idempotence = record_converge(env, todo, first, second, waivers, rerun=rerun)
        # In sync: after everything, each router's running configuration still equals the
        # intended one (a dry run: reads, diffs, touches nothing). When nothing ran after the
        # push and it changed nothing, its own reading is that answer.
        outcome.in_sync = (outcome.network if not rerun and not touched else
                           push.run(model, env, outcome.hosts, workers=8, dry_run=True,
                                    progress=progress))
        record_network(env, outcome.in_sync)
    else:
        record_converge(env, todo, first, None, waivers, every=True)
    converged.remember(env, digests, todo)
    neighbours = (affected.neighbours(every, selection.municipalities)
                  if len(names) != len(every) and selection.municipalities else [])
    with ThreadPoolExecutor(max_workers=1) as beside:
        # The columns are checked while the selected hosts are verified: both mostly wait on
        # the hosts (probes that must time out, services), not on this machine.
        columns = beside.submit(
            verify.run, env, inventory, neighbours,
            suites=[verify.SUITES / f"test_site_client.py::{ISOLATION_CHECK}"],
            progress=progress, folder="verify-columns") if neighbours else None
        if neighbours:
            say(f"verifying, and that {len(neighbours)} site client(s) of the other "
                "municipalities do not reach the selected ones …")
        else:
            say("verifying …")
        outcome.verdicts = verify.run(env, inventory, outcome.hosts, progress=progress)
        outcome.columns = columns.result() if columns else {}
    record_verify(env, outcome.verdicts)
    outcome.report = report.write(model, env, report.default_folder(env), every)
    outcome.seconds = time.monotonic() - started
    return outcome
