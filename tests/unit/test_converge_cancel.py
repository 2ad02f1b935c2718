"""Ctrl-C during a converge stops Ansible too.

pexpect starts ansible-playbook in a session of its own, so the terminal's SIGINT reaches only
fellesdrift; without a cancel, the playbook and its workers went on working on the hosts after
the command had "stopped". Here a real `converge.run` runs a real playbook (on localhost, local
connection) whose task waits; the process gets SIGINT while the task runs; it must exit, and
no process of that run (the playbook, its workers, the task's shell) may be left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import sys
from pathlib import Path
from fellesdrift.converge import run as converge
try:
    converge.run(sys.argv[1], Path(sys.argv[2]), 1, playbook=sys.argv[3], settings={})
except KeyboardInterrupt as e:
    print("cancelled:", e)
    sys.exit(130)
print("finished")
"""


def _processes_with(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline and proc.name != str(os.getpid()):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_sigint_during_converge_stops_the_playbook_and_its_workers(tmp_path: Path) -> None:
    # A wait no other process has: the task's shell and its sleep both carry it.
    marker = f"sleep 3{uuid.uuid4().int % 10**8:08d}.5"
    started = tmp_path / "started"
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("localhost ansible_connection=local "
                         f"ansible_python_interpreter={sys.executable}\n")
    playbook = tmp_path / "wait.yml"
    playbook.write_text(f"""
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.shell: "touch {started} && {marker}"
""")
    env = f"unit-cancel-{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, env, str(inventory), str(playbook)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not started.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the playbook's task never started"
            time.sleep(0.2)
        # ansible-playbook and its workers (forks of it) carry the playbook's path.
        assert _processes_with(str(playbook)), "ansible-playbook is not running"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, (out, err[-2000:])
        assert "cancelled: converge cancelled; ansible-playbook stopped" in out
        # The playbook, its workers (each in a session of its own) and what they ran.
        deadline = time.monotonic() + 15
        while (_processes_with(str(playbook)) or _processes_with(marker)) \
                and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_with(str(playbook)) == []
        assert _processes_with(marker) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for leftover in _processes_with(marker):
            os.kill(int(leftover.split(":")[0]), signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(ROOT / ".lab" / env)], check=False)
