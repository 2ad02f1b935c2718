"""Idempotence judged from events, waivers, and verdicts read from a JUnit report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fellesdrift.access import credentials
from fellesdrift.converge import idempotence
from fellesdrift.converge import run as converge
from fellesdrift.provision import hosts
from fellesdrift.provision.hosts import Host
from fellesdrift.verify import run as verify


def _events(*events: dict[str, object]) -> converge._Events:
    collected = converge._Events()
    for e in events:
        collected(e)
    return collected


def test_changed_tasks_and_handlers_are_named_from_events() -> None:
    seen = _events(
        {"event": "runner_on_ok", "event_data": {"host": "gis-01", "role": "gis_hosting",
                                                 "task": "Load the sites",
                                                 "task_uuid": "t1", "res": {"changed": True}}},
        {"event": "playbook_on_handler_task_start", "event_data": {"task_uuid": "h1"}},
        {"event": "runner_on_ok", "event_data": {"host": "gis-01", "role": "gis_hosting",
                                                 "task": "Reload nginx", "task_uuid": "h1",
                                                 "res": {"changed": True}}},
        {"event": "runner_on_ok", "event_data": {"host": "gis-01", "task": "Gather",
                                                 "res": {"changed": False}}})
    assert [str(t) for t in seen.changed] == [
        "gis-01: gis_hosting : Load the sites (task)",
        "gis-01: gis_hosting : Reload nginx (handler)"]


def _result(*changed: converge.ChangedTask) -> converge.ConvergeResult:
    return converge.ConvergeResult("successful", 0, Path("."),
                                   {"h": converge.HostRecap(ok=3, changed=len(changed))},
                                   list(changed))


def test_a_second_run_that_changes_nothing_is_idempotent() -> None:
    assert idempotence.judge(_result(), []).ok


def test_only_waived_changes_are_allowed(tmp_path: Path) -> None:
    waivers = tmp_path / "w.yml"
    waivers.write_text("waivers:\n  - role: monitoring\n    task: Wait for Prometheus\n"
                       "    reason: a probe, never a change\n")
    loaded = idempotence.load_waivers(waivers)
    waived = converge.ChangedTask("overvaking", "monitoring", "Wait for Prometheus", False)
    other = converge.ChangedTask("gis-01", "gis_hosting", "Load the sites", False)
    judged = idempotence.judge(_result(waived, other), loaded)
    assert not judged.ok
    assert judged.changed == [other]
    assert [(t, w.reason) for t, w in judged.waived] == [(waived, "a probe, never a change")]


@pytest.mark.parametrize("text, says", [
    ("waivers:\n  - role: x\n    task: y\n", "field reason"),
    ("waivers:\n  - role: x\n    task: y\n    reason: z\n    host: h\n", "unknown field"),
    ("- role: x\n", "a list `waivers:`"),
])
def test_a_bad_waiver_file_is_one_clear_error(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "w.yml"
    path.write_text(text)
    with pytest.raises(idempotence.WaiverError, match=says):
        idempotence.load_waivers(path)


def test_the_project_waiver_file_loads() -> None:
    for waiver in idempotence.load_waivers():
        assert waiver.reason.strip()


def test_verdicts_per_host_and_tenancy_from_junit(tmp_path: Path) -> None:
    row = json.dumps({"kind": "gis", "from": "vinje", "to": {"vinje": True, "tokke": False}})
    report = tmp_path / "junit.xml"
    report.write_text(f"""<testsuites><testsuite>
<testcase classname="tests.infra.test_tenancy" name="t[ansible://gis-01]">
 <properties><property name="host" value="gis-01"/>
 <property name="tenancy" value='{row}'/></properties></testcase>
<testcase classname="tests.infra.test_common" name="c[ansible://gis-01]">
 <properties><property name="host" value="gis-01"/></properties>
 <failure message="sshd allows root"/></testcase>
</testsuite></testsuites>""")
    hosts = [Host(n, n, ("x",), "10.0.0.1", "ops", 22, "k") for n in ("gis-01", "okonomi-01")]
    found = verify.verdicts(report, hosts)
    assert (found["gis-01"].passed, found["gis-01"].failed) == (1, 1)
    assert "sshd allows root" in found["gis-01"].failures[0]
    assert not found["okonomi-01"].ok  # no check ran against it: never counted as passed
    assert verify.tenancy(found) == {"gis": {"vinje": {"vinje": True, "tokke": False}}}


SECRET_PLAYBOOK = """
- name: Use a secret
  hosts: probe
  gather_facts: false
  connection: local
  tasks:
    - name: Check every item (each holds a password)
      ansible.builtin.assert:
        that: item.password | length > 20
      loop: "{{ probe_municipalities }}"
      loop_control:
        label: "{{ item.slug }}"
      no_log: true
    - name: Write the password where the test can compare it
      ansible.builtin.copy:
        content: "{{ probe_municipalities[0].password }}"
        dest: "{{ probe_out }}"
        mode: "0600"
      no_log: true
"""


def test_a_converge_keeps_the_secrets_and_the_passphrase_out_of_its_artifacts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ansible-runner run (the platform's settings, Mitogen) with a !vault password and
    the passphrase given in PULUMI_CONFIG_PASSPHRASE: the role gets the password, and no file
    of the run's artifacts holds it or the passphrase."""
    monkeypatch.setattr("fellesdrift.paths.LAB_DIR", tmp_path / "lab")
    passphrase = "unit converge passphrase"
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", passphrase)
    monkeypatch.delenv(credentials.PASSPHRASE_SOCKET, raising=False)
    secret = credentials.password("unit", "gis/vinje")
    out = tmp_path / "seen"
    localhost = Host("localhost", "unit-localhost", ("probe",), "127.0.0.1", "ops", 22, "k")
    inventory = hosts.ansible_inventory("unit", [localhost], {"localhost": {
        "probe_municipalities": [{"slug": "vinje", "password": secret}],
        "probe_out": str(out)}})
    playbook = tmp_path / "secret.yml"
    playbook.write_text(SECRET_PLAYBOOK)
    result = converge.run("unit", inventory, 1, playbook=str(playbook))
    assert result.ok, result.failures
    assert out.read_text() == secret
    artifacts = [p for p in (tmp_path / "lab" / "unit" / "ansible").rglob("*") if p.is_file()]
    assert any(p.name == "command" for p in artifacts)  # the file that holds the environment
    for needle in (secret, passphrase):
        assert [p for p in artifacts if needle.encode() in p.read_bytes()] == []


# Events recorded from ansible-runner 2.4 / ansible-core 2.19 in check mode (`--check --diff`),
# trimmed to the fields the parser reads: copy (a list of before/after), lineinfile (content and
# file attributes), a copy in a loop (the diffs on the items), apt (`prepared`), an unchanged
# task and a skipped one.
CHECK_EVENTS: list[dict[str, object]] = [
    {"event": "runner_on_ok", "event_data": {
        "host": "gis-01", "role": "gis_hosting", "task": "Write the file", "task_uuid": "t1",
        "res": {"changed": True, "diff": [{
            "before_header": "/etc/gis/sites.conf", "before": "old line\nkeep\n",
            "after_header": "/etc/gis/sites.conf", "after": "new line\nkeep\n"}]}}},
    {"event": "runner_on_ok", "event_data": {
        "host": "gis-01", "role": "common", "task": "A line", "task_uuid": "t2",
        "res": {"changed": True, "diff": [
            {"before": "old line\nkeep\n", "after": "old line\nkeep\nadded\n",
             "before_header": "/etc/motd (content)", "after_header": "/etc/motd (content)"},
            {"before_header": "/etc/motd (file attributes)",
             "after_header": "/etc/motd (file attributes)"}]}}},
    {"event": "runner_on_ok", "event_data": {
        "host": "gis-01", "role": "common", "task": "Files in a loop", "task_uuid": "t3",
        "res": {"changed": True, "results": [
            {"changed": True, "diff": [{"before": "", "after_header": "/etc/a", "after": "a\n"}]},
            {"changed": False, "diff": [{"before": "b\n", "after": "b\n"}]},
            {"changed": True, "diff": [{"before": "", "after_header": "/etc/c", "after": "c\n"}]},
        ]}}},
    {"event": "runner_on_ok", "event_data": {
        "host": "okonomi-01", "role": "common", "task": "A package", "task_uuid": "t4",
        "res": {"changed": True, "diff": {"prepared": (
            "The following NEW packages will be installed:\n  cowsay\n"
            "0 upgraded, 1 newly installed, 0 to remove and 137 not upgraded.")}}}},
    {"event": "runner_on_skipped", "event_data": {
        "host": "okonomi-01", "task": "A command", "task_uuid": "t5", "res": {}}},
    {"event": "runner_on_ok", "event_data": {
        "host": "okonomi-01", "task": "Unchanged", "task_uuid": "t6", "res": {"changed": False}}},
]


def test_check_mode_names_each_task_that_would_change_with_its_diff() -> None:
    seen = _events(*CHECK_EVENTS)
    by_task = {t.task: t for t in seen.changed}
    assert list(by_task) == ["Write the file", "A line", "Files in a loop", "A package"]
    assert by_task["Write the file"].diff == (
        "--- before: /etc/gis/sites.conf\n+++ after: /etc/gis/sites.conf\n"
        "@@ -1,2 +1,2 @@\n-old line\n+new line\n keep\n")
    assert by_task["A line"].diff.endswith(" keep\n+added\n")
    assert "(file attributes)" not in by_task["A line"].diff  # no before/after: no diff
    loop = by_task["Files in a loop"].diff
    assert "+a\n" in loop and "+c\n" in loop and "b\n" not in loop  # only changed items
    assert by_task["A package"].diff.startswith("The following NEW packages")
    assert by_task["A package"].diff.endswith("not upgraded.\n")
    assert (by_task["A package"].host, by_task["A package"].role) == ("okonomi-01", "common")


@pytest.mark.parametrize("diff, says", [
    ({"before": {"a": 1}, "after": {"a": 2}}, '-    "a": 1\n+    "a": 2\n'),
    ({"before": "x", "after": "y"}, "-x\n\\ No newline at end of file\n+y\n"),
    ({"dst_binary": 1}, "diff skipped: destination file appears to be binary\n"),
    ({"src_larger": 104448}, "diff skipped: source file size is greater than 104448\n"),
    (None, ""),
    ("not a diff", ""),
])
def test_a_diff_reads_as_ansible_shows_it(diff: object, says: str) -> None:
    assert says in converge.diff_text(diff) if says else converge.diff_text(diff) == ""


CHECK_PLAYBOOK = """
- name: Would change a file
  hosts: probe
  gather_facts: false
  connection: local
  tasks:
    - name: Write the file
      ansible.builtin.copy:
        content: "new line\\nkeep\\n"
        dest: "{{ probe_out }}"
        mode: "0600"
"""


def test_a_check_run_applies_nothing_and_shows_what_would_change(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real ansible-runner run with check=True: the file stays as it was, and the result
    names the task that would change it with the diff of old and new content."""
    monkeypatch.setattr("fellesdrift.paths.LAB_DIR", tmp_path / "lab")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "unit converge passphrase")
    monkeypatch.delenv(credentials.PASSPHRASE_SOCKET, raising=False)
    out = tmp_path / "target.txt"
    out.write_text("old line\nkeep\n")
    localhost = Host("localhost", "unit-localhost", ("probe",), "127.0.0.1", "ops", 22, "k")
    inventory = hosts.ansible_inventory("unit", [localhost], {"localhost": {
        "probe_out": str(out)}})
    playbook = tmp_path / "check.yml"
    playbook.write_text(CHECK_PLAYBOOK)
    result = converge.run("unit", inventory, 1, playbook=str(playbook), check=True)
    assert result.ok and result.check, result.failures
    assert out.read_text() == "old line\nkeep\n"
    assert [(t.host, t.task) for t in result.changed_tasks] == [("localhost", "Write the file")]
    assert "-old line\n+new line\n keep\n" in result.changed_tasks[0].diff


def _run(recap: dict[str, tuple[int, int]], *changed: converge.ChangedTask
         ) -> converge.ConvergeResult:
    """A run's result: per host (ok, changed), and its changed tasks."""
    return converge.ConvergeResult(
        "successful", 0, Path("."),
        {h: converge.HostRecap(ok=ok, changed=n) for h, (ok, n) in recap.items()}, list(changed))


_PROBE = idempotence.Waiver("monitoring", "Wait for Prometheus", "a probe, never a change")


def test_the_second_run_goes_only_to_the_hosts_something_changed() -> None:
    first = _run({"dns": (20, 2), "gis": (30, 0), "mon": (25, 1), "rtr": (15, 0)},
                 converge.ChangedTask("dns", "dns_ntp", "Write the zone", False),
                 converge.ChangedTask("dns", "dns_ntp", "Reload bind", True),
                 converge.ChangedTask("mon", "monitoring", "Wait for Prometheus", False))
    names = ["dns", "gis", "mon", "rtr", "new"]
    # dns changed; mon changed only what a waiver covers; rtr was pushed to by the network
    # phase; `new` is missing from the first run's recap.
    assert idempotence.to_rerun(names, first, [_PROBE], touched={"rtr"}) == ["dns", "rtr",
                                                                              "new"]
    assert idempotence.to_rerun(names, first, [], touched=()) == ["dns", "mon", "new"]


def test_a_first_run_that_changed_nothing_is_its_own_second_run() -> None:
    first = _run({"dns": (20, 0), "gis": (30, 0)})
    ran: list[list[str]] = []

    def run_on(chosen: list[str]) -> converge.ConvergeResult:
        ran.append(chosen)
        return _run({h: (1, 0) for h in chosen})

    second, rerun = idempotence.converge_again(["dns", "gis"], first, [], run_on)
    assert (ran, rerun) == ([], [])
    judged = idempotence.judge(second, [], rerun)
    assert judged.ok
    verdicts = idempotence.per_host(["dns", "gis"], first, second, judged)
    assert [(v.name, v.ok, v.detail) for v in verdicts] == [
        ("dns", True, "changed nothing"), ("gis", True, "changed nothing")]


def test_a_change_on_the_rerun_fails_that_host_and_no_other() -> None:
    zone = converge.ChangedTask("dns", "dns_ntp", "Write the zone", False)
    first = _run({"dns": (20, 1), "gis": (30, 0)}, zone)

    def run_on(chosen: list[str]) -> converge.ConvergeResult:
        assert chosen == ["dns"]
        return _run({"dns": (20, 1)}, zone)  # it changes the zone again: not idempotent

    second, rerun = idempotence.converge_again(["dns", "gis"], first, [], run_on)
    assert sorted(second.recap) == ["dns", "gis"]
    judged = idempotence.judge(second, [], rerun)
    assert not judged.ok
    assert judged.changed == [zone]
    verdicts = {v.name: v for v in idempotence.per_host(["dns", "gis"], first, second, judged)}
    assert verdicts["dns"].error == "not idempotent: the second run changed 1"
    assert verdicts["gis"].ok


def test_waived_changes_of_a_host_not_rerun_are_shown_as_waived() -> None:
    probe = converge.ChangedTask("mon", "monitoring", "Wait for Prometheus", False)
    first = _run({"mon": (25, 1)}, probe)
    second, rerun = idempotence.converge_again(["mon"], first, [_PROBE],
                                               lambda chosen: pytest.fail(str(chosen)))
    judged = idempotence.judge(second, [_PROBE], rerun)
    assert judged.ok and [t for t, _ in judged.waived] == [probe]
