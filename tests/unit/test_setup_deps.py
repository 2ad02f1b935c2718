"""Set-up installs everything the code runs.

Every external program that the package (fellesdrift/), the stacks (stacks/), the scripts
(scripts/) and the Makefile run is found in their source: in Python (through ``ast``) the
literal first element of an argv list handed to a call that runs it (``subprocess.run``,
``Popen``, the lab's ``_run`` …) and the literal names given to ``shutil.which``; a name bound
to a variable is followed when the module binds it to literals (``for binary in ("iptables",
…)``); in shell scripts and Makefile recipes the first word of each command. Each program must
come from ``.venv``, from the Pulumi engine cache, from Debian's base system (a package that is
Essential or of priority required), or be listed in ``fellesdrift.doctor.PROGRAMS`` with a
Debian package that ``scripts/setup.sh`` installs. Where the program is installed here, Debian's
own database (``dpkg -S``) must agree with that table.
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fellesdrift.lab import teardown as lab_teardown
from fellesdrift.pipeline import doctor
from fellesdrift.provision import engine

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "scripts" / "setup.sh"
VENV_BIN = Path(sys.executable).parent

#: Calls whose first argument is an argv list that is run on this machine.
RUNNERS = {"run", "Popen", "check_output", "check_call", "call", "_run", "_tool_version",
           "execvp", "execv"}
#: Shell words that are not programs: keywords and builtins.
SHELL_WORDS = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
               "case", "esac", "in", "function", "!", "{", "}", "[[", "]]", "[", "test",
               "echo", "printf", "cd", "exit", "return", "set", "export", "local", "read",
               "exec", "command", "trap", "shift", "source", ".", ":", "true", "false",
               "eval", "wait", "declare", "unset", "pwd", "type", "time"}
#: Programs the code runs that no Debian package of this machine's kind provides, and why.
ELSEWHERE = {
    "go": "the engine build's toolchain (Go 1.25+, newer than Debian's; README 'What it needs'); "
          "scripts/engine/build.sh says so when it is missing",
    "systemctl": "setup.sh stops frr's daemons with it where systemd runs (`|| true` elsewhere)",
}


@dataclass(frozen=True)
class Call:
    program: str
    where: str


def _python_calls(path: Path) -> Iterator[Call]:
    tree = ast.parse(path.read_text(), str(path))
    bound: dict[str, set[str]] = {}  # name → the literal strings the module binds it to
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and isinstance(node.target, ast.Name) \
                and isinstance(node.iter, ast.Tuple | ast.List):
            bound.setdefault(node.target.id, set()).update(
                e.value for e in node.iter.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str))
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) \
                and isinstance(node.value.value, str):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    bound.setdefault(t.id, set()).add(node.value.value)

    def names(expr: ast.expr) -> set[str]:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return {expr.value}
        if isinstance(expr, ast.Name):
            return bound.get(expr.id, set())
        return set()

    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        first = node.args[0]
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        if name == "which":
            found = names(first)
        elif name in RUNNERS and isinstance(first, ast.List | ast.Tuple) and first.elts:
            found = names(first.elts[0])
        else:
            continue
        for program in found:
            yield Call(program, where)


def _shell_commands(text: str, where: str, make: bool = False) -> Iterator[Call]:
    """The first word of every command of a shell text (words after ;, &&, ||, |, (, $( …).
    Comments, array literals (``name=( … )``) and line continuations are taken out first."""
    functions = set(re.findall(r"^\s*([\w-]+)\s*\(\)", text, re.M))
    text = re.sub(r"(^|\s)#.*$", "", text, flags=re.M).replace("\\\n", " ")
    text = re.sub(r"\b[A-Za-z_]\w*\+?=\([^)]*\)", " ", text)
    lexer = shlex.shlex(text.replace("$(", "( "), posix=True, punctuation_chars=True)
    lexer.whitespace = " \t\r"
    lexer.commenters = "#"
    start = True
    for token in lexer:
        if token in ("\n", ";", "&&", "||", "|", "(", ")", "&", ";;", "{", "}"):
            start = True
            continue
        if not start or token in ("then", "do", "else", "elif", "if", "while", "until", "!"):
            continue
        if re.fullmatch(r"[A-Za-z_]\w*\+?=.*", token, re.S):  # an assignment before a command
            continue
        start = False
        word = token.lstrip("@-") if make else token
        if word in SHELL_WORDS or word in functions or not re.fullmatch(r"[a-z][\w.+-]*",
                                                                        word):
            continue  # keywords, functions, paths and variables ($here/x, "$python")
        yield Call(word, where)


def _makefile_commands(path: Path) -> Iterator[Call]:
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.startswith("\t"):
            yield from _shell_commands(line.strip(), f"{path.relative_to(ROOT)}:{n}", make=True)


def _shell_files() -> list[Path]:
    found = []
    for path in sorted((ROOT / "scripts").rglob("*")):
        if path.is_file() and "golden-image/files" not in str(path) and (
                path.suffix == ".sh" or path.read_bytes()[:20].startswith(b"#!/bin/sh")
                or path.read_bytes()[:30].startswith(b"#!/usr/bin/env bash")):
            found.append(path)
    return found


@cache
def program_calls() -> list[Call]:
    """Every external program the package, the stacks, the scripts and the Makefile run."""
    calls: list[Call] = []
    for folder in ("fellesdrift", "stacks", "scripts"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            calls += _python_calls(path)
    for path in _shell_files():
        calls += _shell_commands(path.read_text(), str(path.relative_to(ROOT)))
    calls += _makefile_commands(ROOT / "Makefile")
    return calls


def setup_packages(setup: Path = SETUP) -> set[str]:
    """The Debian packages scripts/setup.sh installs (its ``packages=( … )`` list)."""
    found = re.search(r"^packages=\(([^)]*)\)", setup.read_text(), re.M)
    assert found, f"{setup}: no packages=( … ) list"
    return set(found.group(1).split())


def _candidates(program: str) -> list[str]:
    """The paths dpkg may know a program by (the link on PATH, its target, /usr-merged twins)."""
    path = shutil.which(program)
    if path is None:
        return []
    found = {path, os.path.realpath(path)}
    found |= {re.sub(r"^/usr/", "/", c) for c in found}
    found |= {"/usr" + c for c in found if not c.startswith("/usr/")}
    return sorted(found)


@cache
def _owners() -> dict[str, str]:
    """{path: Debian package} for every program the code runs or the table names (one dpkg
    call: it reads its whole database each time)."""
    programs = {c.program for c in program_calls()} | {p.name for p in doctor.PROGRAMS}
    paths = sorted({c for p in programs for c in _candidates(p)})
    proc = subprocess.run(["dpkg", "-S", *paths], capture_output=True, text=True, check=False)
    owners = {}
    for line in proc.stdout.splitlines():
        package, _, path = line.partition(": ")
        owners[path.strip()] = package.split(",")[0].split(":")[0].strip()
    return owners


def _package_of(program: str) -> str | None:
    """The Debian package that owns this program on this machine (None: not installed)."""
    return next((_owners()[c] for c in _candidates(program) if c in _owners()), None)


@cache
def _is_base(package: str) -> bool:
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Essential} ${Priority}", package],
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0 and proc.stdout.split()[:1] == ["yes"] or \
        proc.stdout.endswith("required")


def _from_project(program: str) -> bool:
    """In .venv (its interpreter aside: a link to the one set-up made .venv with) or the
    engine cache."""
    interpreter = re.fullmatch(r"python[\d.]*", program) is not None
    return ((VENV_BIN / program).exists() and not interpreter) \
        or (engine.bin_dir() / program).exists()


def problems(calls: list[Call], setup: Path = SETUP) -> list[str]:
    """What set-up fails to install of what ``calls`` run (empty: everything)."""
    installs = setup_packages(setup)
    table = {p.name: p for p in doctor.PROGRAMS}
    found: list[str] = []
    for program in sorted({c.program for c in calls}):
        where = ", ".join(sorted({c.where for c in calls if c.program == program})[:3])
        if _from_project(program) or program in ELSEWHERE:
            continue
        if program in table:
            if table[program].package not in installs:
                found.append(f"{program} ({where}) comes from Debian package "
                             f"{table[program].package}, which {setup.name} does not install")
            continue
        package = _package_of(program)
        if package is None or not _is_base(package):
            found.append(f"{program} ({where}) is "
                         + (f"from Debian package {package}, not part of the base system"
                            if package else "not installed here")
                         + ": add it to fellesdrift.doctor.PROGRAMS with its package, and the "
                         f"package to {setup.name}")
    return found


def test_the_scan_finds_the_programs_the_code_runs() -> None:
    """Positive control: programs known to be run, in each kind of source, are found."""
    found = {c.program: c.where for c in program_calls()}
    for program, source in (("podman", "fellesdrift/lab/"), ("iptables", "fellesdrift/lab/"),
                            ("ip6tables", "fellesdrift/lab/"), ("git", "fellesdrift/"),
                            ("debootstrap", "scripts/golden-image/build.sh"),
                            ("flock", "scripts/engine/build.sh"),
                            ("apt-get", "scripts/setup.sh"), ("rm", "Makefile")):
        assert program in found, f"{program} is not found in {source}"
    assert not {"then", "fi", "say", "cleanup", "step"} & set(found)  # keywords, functions


def test_setup_installs_every_program_the_code_runs() -> None:
    found = problems(program_calls())
    assert not found, "\n".join(found)


def test_every_program_of_the_table_comes_from_its_package() -> None:
    wrong = [f"{p.name}: the table says {p.package}, dpkg says {_package_of(p.name)}"
             for p in doctor.PROGRAMS
             if _package_of(p.name) is not None and _package_of(p.name) != p.package]
    assert not wrong, wrong


def _without(dropped: str, folder: Path) -> Path:
    """A copy of scripts/setup.sh whose package list lacks ``dropped``."""
    text = SETUP.read_text()
    listed = re.search(r"^packages=\(([^)]*)\)", text, re.M)
    assert listed and dropped in listed.group(1).split()
    kept = " ".join(p for p in listed.group(1).split() if p != dropped)
    copy = folder / f"setup-without-{dropped}.sh"
    copy.write_text(text[:listed.start(1)] + kept + text[listed.end(1):])
    return copy


def test_a_package_dropped_from_setup_is_caught(tmp_path: Path) -> None:
    """Drop, one at a time, each package whose program the code runs: the check names it."""
    called = {c.program for c in program_calls()}
    packages = sorted({p.package for p in doctor.PROGRAMS if p.name in called})
    assert {"podman", "iptables", "iproute2", "git"} <= set(packages)
    for dropped in packages:
        found = problems(program_calls(), _without(dropped, tmp_path))
        assert any(f"Debian package {dropped}, which setup-without-{dropped}.sh does not "
                   "install" in f for f in found), (dropped, found)


def test_up_stops_before_making_anything_when_a_program_is_missing(tmp_path: Path) -> None:
    """`up` on a machine without iptables (the first user's machine): one line saying what to
    install, exit 2, and no network, route or lab file made."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for p in doctor.PROGRAMS:  # every program `up` runs but iptables
        where = shutil.which(p.name)
        if where and p.package != "iptables":
            (tools / p.name).symlink_to(where)
    path = [str(tools)] + [d for d in os.environ["PATH"].split(os.pathsep)
                           if not (Path(d) / "iptables").exists()]
    assert shutil.which("iptables", path=os.pathsep.join(path)) is None
    env = "preflight-unit"
    proc = subprocess.run([sys.executable, "-m", "fellesdrift", "up",
                           str(ROOT / "tests" / "fixtures" / "inventories"), "--env", env],
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "PATH": os.pathsep.join(path)})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [
        "error: missing iptables, ip6tables: run `make setup` as root (or `apt-get install "
        "iptables`); nothing was made."], proc.stderr
    assert not (ROOT / ".lab" / env).exists()
    if shutil.which("podman"):
        assert not lab_teardown._labeled("network", env)
        assert not lab_teardown._labeled("container", env)
