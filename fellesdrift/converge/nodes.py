"""Converge on execution nodes: ansible-runner's remote execution, ``transmit | worker |
process`` (the protocol of AWX's execution nodes), over the environment's SSH.

An environment names its execution nodes and the municipalities each serves
(``environments.yaml``, :class:`fellesdrift.environment.ExecutionNode`). A converge is split
into shards by municipality (:func:`split`): a node's shard is the hosts of its
municipalities, every other host is converged here. Each node's shard is

- *transmitted*: ansible-runner's Transmitter writes the job's arguments (one JSON line) and
  a zip of a private data directory made for it (the project's ``ansible.cfg``,
  ``playbooks/``, ``roles/`` and the playbooks' filters, fellesdrift/syntax.py; the
  inventory, the hosts' known_hosts and the lab's SSH key) to the stdin of
- ``ssh NODE fellesdrift-worker`` (``ansible-runner worker`` under a small wrapper the role
  ``execution_node`` installs): the node unpacks it into a private data directory of its own
  on tmpfs (deleted at the end, ``--delete``), runs ansible-playbook there with its locked
  Ansible and streams every event, the status and the artifacts back on stdout, which
- ansible-runner's Processor reads here: each event goes to the same event handler as a local
  run's (:class:`fellesdrift.converge.run._Events`: progress, recap, changed tasks and
  failures), and is written under ``.lab/<env>/ansible/artifacts/<run>.<node>/job_events``
  with the node's stdout, rc and status beside it.

What the payload does not carry (read from ansible-runner 2.4.3's ``streaming.py``): only the
private data directory is zipped, so a ``project_dir`` outside it means nothing on the node;
the project is copied into ``project/``. Paths in the inventory are the control node's: the
shard's extra variables point the key and known_hosts at the node's copies.

Secrets: the lab's key is given as ansible-runner's ``ssh_key``: the node's runner writes it
into a FIFO read once by ``ssh-add`` (the run's own ssh-agent), and it is on the node's disk
only inside the private data directory (tmpfs) while the run lasts. The vault passphrase
never reaches the node's disk or any process environment (ansible-runner records the
environment in its artifacts): it is the first line of the session's stdin, before the
transmit stream; the wrapper keeps it in memory and serves it on a Unix socket (0600) in the
job's folder, where the node's vault client reads it when Ansible asks. (A socket forwarded by
SSH, ``-R``, would need the sshd hardening's ``AllowTcpForwarding local`` relaxed: refused.)
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ansible_runner

from fellesdrift.access import credentials, keys
from fellesdrift.environment import ExecutionNode

#: Where the role ``execution_node`` installs the locked Ansible, the worker's wrapper and the
#: vault client.
VENV = "/opt/fellesdrift-ansible"
WORKER = f"{VENV}/bin/fellesdrift-worker"
VAULT_CLIENT = f"{VENV}/bin/fellesdrift-vault-password"
#: The worker's private data directories on a node (one per job, removed when it ends).
WORK = "/run/fellesdrift-worker"
#: How long ssh waits for a node before its shard fails (seconds).
CONNECT_TIMEOUT = 10
#: The project's parts a node needs (copied into the payload's ``project/``): the playbooks'
#: filters are fellesdrift/syntax.py's functions (playbooks/filter_plugins), which imports
#: nothing else.
PROJECT = ("ansible.cfg", "playbooks", "roles", "fellesdrift/__init__.py", "fellesdrift/syntax.py")


@dataclass(frozen=True)
class Shard:
    """The hosts one place converges: ``node`` None is this machine."""

    node: ExecutionNode | None
    hosts: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.node.name if self.node else "local"


def split(groups: Mapping[str, Iterable[str]], nodes: Iterable[ExecutionNode]) -> list[Shard]:
    """The shards of a run of the hosts ``groups`` names ({host: its groups}): each node's
    the hosts of its municipalities (group ``municipality_<slug>``), this machine's the rest
    (first, when it has any). A node with no host in the run has no shard."""
    by_slug = {slug: node for node in nodes for slug in node.municipalities}
    placed: dict[str, list[str]] = {}
    here: list[str] = []
    for host, its in groups.items():
        node = next((by_slug[g.removeprefix("municipality_")] for g in its
                     if g.startswith("municipality_")
                     and g.removeprefix("municipality_") in by_slug), None)
        (placed.setdefault(node.name, []) if node else here).append(host)
    named = {node.name: node for node in by_slug.values()}
    shards = [Shard(None, tuple(here))] if here else []
    return shards + [Shard(named[name], tuple(hosts)) for name, hosts in placed.items()]


def inventory_groups(inventory: Path, limit: str | None = None) -> dict[str, list[str]]:
    """{host: its group names} of the inventory's hosts that ``limit`` (an Ansible pattern)
    selects, read by Ansible's own inventory manager (no secret is decrypted)."""
    from ansible import constants
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader

    # The sites' groups (site_<slug>) hold a '-': kept as they are, as ansible-playbook keeps
    # them ('never'), without the warning this process would print for each load.
    kept = constants.TRANSFORM_INVALID_GROUP_CHARS
    constants.TRANSFORM_INVALID_GROUP_CHARS = "ignore"
    try:
        manager = InventoryManager(loader=DataLoader(), sources=[str(inventory)])
    finally:
        constants.TRANSFORM_INVALID_GROUP_CHARS = kept
    if limit:
        manager.subset(limit)
    return {h.name: [g.name for g in h.get_groups() if g.name not in ("all", "ungrouped")]
            for h in manager.get_hosts("all")}


def ssh_command(env: str, node: ExecutionNode) -> list[str]:
    """ssh to ``node`` as to every host of the environment: its key, its known_hosts, strict
    host-key checking, no password prompt, no forwarding."""
    key, _ = keys.lab_keypair(env)
    argv = ["ssh", "-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", f"UserKnownHostsFile={keys.known_hosts_path(env)}",
            "-o", "StrictHostKeyChecking=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}",
            "-o", "ServerAliveInterval=15", "-o", "ControlMaster=no", "-o", "ControlPath=none",
            "-o", "ClearAllForwardings=yes", "-o", "ForwardAgent=no"]
    return [*argv, node.destination]


def _payload(env: str, inventory: Path, root: Path, folder: Path, work: str) -> dict[str, Any]:
    """Fill ``folder`` as the job's private data directory; the job's arguments for the node,
    whose private data directory will be ``work``."""
    for part in PROJECT:
        source = root / part
        target = folder / "project" / part
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__",
                                                                          "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (folder / "inventory").mkdir()
    shutil.copy2(inventory, folder / "inventory" / "hosts.yml")
    (folder / "ssh").mkdir()
    known = keys.known_hosts_path(env)
    shutil.copy2(known, folder / "ssh" / "known_hosts")
    key, public = keys.lab_keypair(env)
    (folder / "ssh" / "key.pub").write_text(public + "\n", encoding="utf-8")
    return {
        "playbook": None,  # set by the caller (relative to project/)
        "inventory": str(folder / "inventory" / "hosts.yml"),
        "ssh_key": key.read_text(encoding="utf-8"),
        # The inventory's key and known_hosts are this machine's paths: the node's copies.
        # ssh picks the agent's key by its public half (IdentitiesOnly=yes).
        "extravars": {
            "ansible_ssh_private_key_file": f"{work}/ssh/key.pub",
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={work}/ssh/known_hosts "
                                       "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
        },
    }


@dataclass
class Outcome:
    """How a shard's stream ended: ansible-runner's status and rc, and what went wrong with
    the node itself (ssh's or the worker's own words), "" when nothing did."""

    status: str
    rc: int
    artifacts: Path
    problem: str = ""


def run_remote(env: str, node: ExecutionNode, inventory: Path, root: Path, playbook: str,
               private_data_dir: Path, ident: str, hosts: Iterable[str],
               event_handler: Callable[[dict[str, Any]], bool], forks: int,
               cmdline: str | None = None,
               procs: list[subprocess.Popen[bytes]] | None = None) -> Outcome:
    """Converge ``hosts`` from ``node``: transmit the job over ssh to the node's
    ``fellesdrift-worker`` (``ansible-runner worker``) and process what it streams back into
    ``event_handler`` and the artifacts ``private_data_dir``/artifacts/``ident``. ``procs``
    hears the ssh process (so that a cancelled run can stop it)."""
    tag = uuid.uuid4().hex[:12]
    work = f"{WORK}/{tag}"
    remote_socket = f"{WORK}/{tag}.sock"
    site = f"{VENV}/lib/python3.11/site-packages"
    envvars = {
        "ANSIBLE_CONFIG": f"{work}/project/ansible.cfg",
        "ANSIBLE_STRATEGY_PLUGINS": f"{site}/ansible_mitogen/plugins/strategy",
        "ANSIBLE_STRATEGY": "mitogen_free",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": f"{work}/facts",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": f"{work}/cp",
        "ANSIBLE_VAULT_PASSWORD_FILE": VAULT_CLIENT,
        credentials.PASSPHRASE_SOCKET: remote_socket,
    }
    artifacts = private_data_dir / "artifacts" / ident
    with tempfile.TemporaryDirectory(prefix="fd-transmit-") as folder:
        job = _payload(env, inventory, root, Path(folder), work)
        job["playbook"] = str(Path(folder) / "project" / "playbooks" / playbook)
        remote = f"umask 077 && PATH={VENV}/bin:$PATH exec {WORKER} {work} {remote_socket}"
        proc = subprocess.Popen([*ssh_command(env, node), remote], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if procs is not None:
            procs.append(proc)
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        errors: list[bytes] = []
        stderr = proc.stderr
        readers = [threading.Thread(target=_transmit, args=(proc.stdin, job, folder, ident,
                                                              envvars, forks, hosts, cmdline),
                                    daemon=True),
                   threading.Thread(target=lambda: errors.append(stderr.read()), daemon=True)]
        for thread in readers:
            thread.start()
        processor = ansible_runner.interface.init_runner(
            streamer="process", _input=proc.stdout, private_data_dir=str(private_data_dir),
            ident=ident, event_handler=event_handler, quiet=True)
        status, _ = processor.run()
        proc.stdout.close()
        ssh_rc = proc.wait()
        for thread in readers:
            thread.join(timeout=30)
    rc_file = artifacts / "rc"
    rc = int(rc_file.read_text().strip()) if rc_file.exists() else (ssh_rc or 1)
    said = b"".join(errors).decode(errors="replace").strip()
    problem = ""
    if not rc_file.exists():
        problem = (f"execution node {node.name} ({node.destination}, {node.at}) did not run "
                   f"the shard: {said.splitlines()[-1] if said else 'ssh exited ' + str(ssh_rc)}")
    return Outcome(str(status), rc, artifacts, problem)


def _transmit(stdin: IO[bytes], job: dict[str, Any], folder: str, ident: str,
              envvars: dict[str, str], forks: int, hosts: Iterable[str],
              cmdline: str | None) -> None:
    """Write the passphrase's line, then the job (ansible-runner's Transmitter) to the
    worker's stdin, and close it."""
    try:
        stdin.write(base64.b64encode(credentials.passphrase().encode()) + b"\n")
        ansible_runner.interface.init_runner(
            streamer="transmit", _output=stdin, private_data_dir=folder, ident=ident,
            envvars=envvars, forks=forks, limit=",".join(hosts), cmdline=cmdline,
            quiet=True, suppress_env_files=False, **job).run()
    except BrokenPipeError:
        pass  # the node went away: the processor reports it
    finally:
        with contextlib.suppress(BrokenPipeError):
            stdin.close()
