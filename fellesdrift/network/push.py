"""Push the intended configuration to every router, safely.

For each device, in parallel (bounded workers), through its netops login (vtysh):

1. connect and archive the running configuration to ``backups/<env>/<device>/<time>.cfg``;
2. diff the normalised running and intended configurations (:mod:`.config`);
3. if they differ (and this is not a dry run): send the commands that turn one into the other,
   read the configuration back and compare it with the intended one, then ``write memory``;
4. on any error on the way, restore the archived configuration (reconnecting if the session
   died) and report the device as failed. One device's failure never stops the others.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fellesdrift.access import keys
from fellesdrift.converge import hostvars
from fellesdrift.fanout import fan_out
from fellesdrift.inventory.model import Inventory
from fellesdrift.network import config, frr, intended
from fellesdrift.paths import ROOT
from fellesdrift.plan import functions
from fellesdrift.progress import RUNNING, Progress, silent
from fellesdrift.provision.hosts import Host
from fellesdrift.results import Result

Status = Literal["unchanged", "changed", "failed", "would-change"]
ROUTER_FUNCTIONS = functions.ROUTERS
BACKUPS = ROOT / "backups"
PHASE = "network"
#: before_each(device, index, command): a hook run before each configuration command is sent.
Hook = Callable[[str, int, str], None]


#: The statuses after which the running configuration is the intended one (a push's
#: "changed" was read back and compared; a dry run's "would-change" was not pushed).
IN_SYNC: tuple[Status, ...] = ("unchanged", "changed")


@dataclass
class DeviceResult(Result):
    """A router's result (``name``: its host name). Ok when its running configuration is
    the intended one afterwards."""

    status: Status = "failed"
    diff: str = ""
    error: str = ""
    backup: str = ""
    rolled_back: bool = False
    seconds: float = 0.0

    @property
    def device(self) -> str:
        return self.name

    @property
    def ok(self) -> bool:
        return self.status in IN_SYNC

    @property
    def changed(self) -> int:
        return int(self.status in ("changed", "would-change"))

    @property
    def detail(self) -> str:
        return self.error or ("running = intended" if self.ok else
                              "running differs from intended")

    @property
    def state(self) -> str:
        return self.status

    def as_dict(self) -> dict[str, Any]:
        fields = asdict(self)
        return {"device": fields.pop("name"), **fields}


@dataclass(frozen=True)
class Target:
    """A router to configure: its host record and how to log in."""

    host: Host
    key_file: str
    known_hosts: str
    username: str = hostvars.NETOPS_USER


def routers(hosts: Sequence[Host], municipalities: Sequence[str] | None = None) -> list[Host]:
    """The lab's routers: the core router and the site routers (of these municipalities)."""
    chosen = [h for h in hosts if functions.function_of(h) in ROUTER_FUNCTIONS]
    if municipalities:
        wanted = {f"municipality_{m}" for m in municipalities}
        chosen = [h for h in chosen if functions.function_of(h) == "core_router"
                  or wanted & set(h.groups)]
    return chosen


def archive(env: str, device: str, text: str, directory: Path = BACKUPS) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = directory / env / device / f"{stamp}.cfg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _apply(conn: frr.FrrVtysh, running: str, wanted: str, device: str,
           hook: Hook | None) -> None:
    """Make the device's configuration ``wanted``; read back and compare; save."""
    commands = config.commands(running, wanted)
    conn.configure(commands, None if hook is None else lambda i, c: hook(device, i, c))
    after = conn.running_config()
    left = config.diff(after, wanted, device)
    if left:
        raise RuntimeError(f"the configuration read back differs from the one pushed:\n{left}")
    conn.save_config()


def configure(target: Target, want: Callable[[dict[str, str]], str], env: str, *,
              dry_run: bool = False, progress: Progress = silent, hook: Hook | None = None,
              connect: Callable[[Target], frr.FrrVtysh] | None = None,
              backups: Path = BACKUPS) -> DeviceResult:
    """Configure one device. ``want(interfaces)`` renders its intended configuration from the
    interface names the device reports (address → name). ``progress`` hears its steps
    (:func:`run` reports the start and the end of each device)."""
    started = time.perf_counter()
    name = target.host.name

    def say(step: str) -> None:
        progress(PHASE, name, RUNNING, step)

    login = connect or (lambda t: frr.connect(t.host.address, t.username, t.key_file,
                                              t.known_hosts))
    result = DeviceResult(name)
    conn: frr.FrrVtysh | None = None
    running = ""
    try:
        say("connecting")
        conn = login(target)
        running = conn.running_config()
        if not dry_run:  # a dry run writes nothing, not even an archive
            result.backup = str(archive(env, name, running, backups))
        wanted = want(conn.interfaces())
        result.diff = config.diff(running, wanted, name)
        if not result.diff:
            result.status = "unchanged"
        elif dry_run:
            result.status = "would-change"
        else:
            say("pushing")
            _apply(conn, running, wanted, name, hook)
            result.status = "changed"
    except Exception as e:  # noqa: BLE001 - any failure: restore, report, go on with others
        result.error = f"{type(e).__name__}: {e}".strip()
        if result.backup and not dry_run:
            say("restoring the archived configuration")
            conn = _restore(target, login, conn, running, result)
    finally:
        if conn is not None:
            with contextlib.suppress(Exception):  # the session may be gone already
                conn.disconnect()
    result.seconds = round(time.perf_counter() - started, 2)
    return result


def _restore(target: Target, login: Callable[[Target], frr.FrrVtysh],
             conn: frr.FrrVtysh | None, archived: str, result: DeviceResult
             ) -> frr.FrrVtysh | None:
    """Put the archived configuration back, in a fresh session (the old one may be dead)."""
    if conn is not None:
        with contextlib.suppress(Exception):  # the session may be gone already
            conn.disconnect()
    try:
        conn = login(target)
        now = conn.running_config()
        if config.diff(now, archived):
            _apply(conn, now, archived, target.host.name, None)
        result.rolled_back = True
        return conn
    except Exception as e:  # noqa: BLE001
        result.error += ("; restoring the archived configuration failed too: "
                         f"{type(e).__name__}: {e}")
        return None


def run(model: Inventory, env: str, hosts: Sequence[Host], *, dry_run: bool = False,
        municipalities: Sequence[str] | None = None, workers: int = 4,
        progress: Progress = silent, hook: Hook | None = None,
        backups: Path = BACKUPS) -> list[DeviceResult]:
    """Configure every router of the lab (in parallel, ``workers`` at a time). Devices are all
    FRR in the lab, whatever the inventory says the real device is."""
    key, _ = keys.lab_keypair(env)
    known = str(keys.known_hosts_path(env))
    devices = set(intended.devices(model))
    chosen = routers(hosts, municipalities)
    unknown = [h.name for h in chosen if h.name not in devices]
    results = [DeviceResult(n, error="no such router in the model") for n in unknown]
    targets = [Target(h, str(key), known) for h in chosen if h.name in devices]

    def one(t: Target) -> DeviceResult:
        def want(interfaces: dict[str, str]) -> str:
            return intended.render(model, t.host.name, "frr", interfaces=interfaces,
                                   hostname=t.host.machine)
        return configure(t, want, env, dry_run=dry_run, progress=progress, hook=hook,
                         backups=backups)

    def failed(t: Target, e: Exception) -> DeviceResult:
        return DeviceResult(t.host.name, error=f"{type(e).__name__}: {e}".strip())

    results += fan_out(one, targets, phase=PHASE, name=lambda t: t.host.name, failed=failed,
                       workers=workers, progress=progress)
    return sorted(results, key=lambda r: (r.device != intended.CORE, r.device))
