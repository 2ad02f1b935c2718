"""FRR configuration text as data: parse, normalise, diff, and the vtysh commands that turn one
configuration into another (the replace semantics of frr-reload, for a login whose shell is
vtysh).

A configuration is a list of *paths*: the block headers a line sits in, then the line
(``("router bgp 65000", "address-family ipv4 unicast", "network 10.1.0.0/24")``); a block
header is a path of its own. Two configurations are equal when their sets of paths are: order,
indentation, comments and what FRR prints but cannot change at run time (``frr version``,
``frr defaults``) do not count.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence

Path = tuple[str, ...]

#: Lines that carry no configuration, or configuration vtysh cannot change at run time.
_IGNORED = re.compile(r"^(!.*|end|Building configuration\.\.\.|Current configuration:|"
                      r"frr version .*|frr defaults .*|#.*)$")
_CLOSERS = {"exit", "exit-address-family", "exit-vrf", "exit-vnc", "quit"}
_TOP_BLOCKS = re.compile(r"^(interface|router|route-map|vrf|line|key chain|segment-routing|bfd|"
                         r"mpls ldp|pseudowire|nexthop-group|rpki)\b")
_SUB_BLOCKS = re.compile(r"^(address-family|vni|peer|profile|segment-list)\b")
#: Settings with one value per context: a new value replaces the old, so the old one needs no
#: `no` (and `no` of it would sometimes remove more than the value).
_SINGLE = re.compile(r"^(hostname|description|bgp router-id|log syslog|"
                     r"neighbor \S+ (remote-as|description)|neighbor \S+ route-map \S+ (in|out)$|"
                     r"match ip address prefix-list)")


def _lines(text: str) -> list[str]:
    """The lines of a configuration as vtysh reads them: split at ``\\n`` only. Other characters
    :meth:`str.splitlines` splits at are no line break to vtysh, so they are none here either
    (and the templates never write them: :func:`fellesdrift.syntax.one_line`)."""
    return text.split("\n")


def _words(line: str) -> list[str]:
    """The words of a line as vtysh splits them: at spaces, tabs and carriage returns only (not
    at the other Unicode white space :meth:`str.split` knows, such as a no-break space)."""
    return [w for w in re.split(r"[ \t\r]+", line) if w]


def parse(text: str) -> list[Path]:
    """The paths of a configuration, in the order the text gives them, without duplicates.

    Blocks are known by their headers (interface, router, route-map …; address-family inside
    them) and end with exit/exit-address-family, or at the next line indented no deeper than
    their header (so :func:`canonical` text parses back to the same paths)."""
    stack: list[tuple[str, int]] = []  # (header, its indentation)
    paths: list[Path] = []
    seen: set[Path] = set()
    for raw in _lines(text):
        line = " ".join(_words(raw))
        if not line or _IGNORED.match(line):
            continue
        if line in _CLOSERS:
            if stack:
                stack.pop()
            continue
        indent = len(raw) - len(raw.lstrip(" "))
        while stack and indent <= stack[-1][1]:
            stack.pop()  # a block left without its closer (or a canonical text)
        path = (*(h for h, _ in stack), line)
        if (_TOP_BLOCKS if not stack else _SUB_BLOCKS).match(line) and len(stack) < 2:
            stack.append((line, indent))
        if path not in seen:
            seen.add(path)
            paths.append(path)
    return _drop_empty(paths)


def _drop_empty(paths: list[Path]) -> list[Path]:
    """Drop interface blocks with nothing in them (FRR lists every interface it knows)."""
    parents = {p[:-1] for p in paths if len(p) > 1}
    return [p for p in paths if not (len(p) == 1 and p[0].startswith("interface ")
                                     and p not in parents)]


def canonical(paths: Iterable[Path]) -> str:
    """One stable text for a set of paths: sorted, indented by depth."""
    return "".join(" " * (len(p) - 1) + p[-1] + "\n" for p in sorted(set(paths)))


def normalise(text: str) -> str:
    return canonical(parse(text))


def diff(running: str, intended: str, device: str = "device") -> str:
    """A unified diff of the normalised configurations; empty when they are equal."""
    def keep_ends(text: str) -> list[str]:
        return [line + "\n" for line in _lines(normalise(text))[:-1]]
    return "".join(difflib.unified_diff(keep_ends(running), keep_ends(intended),
                                        f"{device} (running)", f"{device} (intended)"))


def _key(line: str) -> str | None:
    """What a single-valued setting sets (`neighbor 10.0.0.1 route-map in`, `description` …),
    None for other lines."""
    m = _SINGLE.match(line)
    if m is None:
        return None
    if line.startswith("neighbor ") and " route-map " in line:
        return f"neighbor {line.split(' ')[1]} route-map {line.split(' ')[-1]}"
    return m.group(1) if not line.startswith("neighbor ") else " ".join(line.split(" ")[:3])


def _replaced(path: Path, added: Sequence[Path]) -> bool:
    key = _key(path[-1])
    return key is not None and any(a[:-1] == path[:-1] and _key(a[-1]) == key for a in added)


def _closer(header: str) -> str:
    return "exit-address-family" if header.startswith("address-family") else "exit"


def _navigate(current: list[str], target: Path, out: list[str]) -> None:
    common = 0
    while common < min(len(current), len(target)) and current[common] == target[common]:
        common += 1
    while len(current) > common:
        out.append(_closer(current.pop()))
    for header in target[common:]:
        out.append(header)
        current.append(header)


#: Settings whose negation takes no arguments in vtysh (`no description`, not `no description
#: <its text>`, which FRR rejects as an unknown command).
NEGATED_BARE = ("description",)


def commands(running: str, intended: str) -> list[str]:
    """vtysh configuration commands (inside `configure terminal`) that make ``running`` equal
    to ``intended``: stale lines go with `no` (a whole block with `no <header>`, a neighbor with
    `no neighbor`), missing lines are added, a single-valued setting is simply set anew."""
    have, want = parse(running), parse(intended)
    have_set, want_set = set(have), set(want)
    removed = [p for p in have if p not in want_set]
    added = [p for p in want if p not in have_set]
    removed_set = set(removed)
    headers_have = {q[:k] for q in have for k in range(1, len(q))}
    headers_want = {q[:k] for q in want for k in range(1, len(q))}
    gone = {(p[0], p[-1].split(' ')[1]) for p in removed
            if re.match(r"^neighbor \S+ remote-as ", p[-1]) and not _replaced(p, added)}
    out: list[str] = []
    current: list[str] = []
    for p in sorted(removed, key=lambda q: (-len(q), q)):
        if any(p[:k] in removed_set and p[:k] in headers_have and not p[0].startswith("interface ")
               for k in range(1, len(p))):
            continue  # its block goes as a whole
        if p in headers_have and p[0].startswith("interface ") and len(p) == 1:
            continue  # an interface cannot be deleted: its lines go one by one
        if _replaced(p, added):
            continue
        words = p[-1].split(" ")
        if words[0] == "neighbor" and (p[0], words[1]) in gone:
            if "remote-as" not in words:
                continue  # goes with the neighbor
            _navigate(current, p[:-1], out)
            out.append(f"no neighbor {words[1]}")
            continue
        _navigate(current, p[:-1], out)
        if words[0] in NEGATED_BARE:
            out.append(f"no {words[0]}")  # vtysh: `no description`, never with its text
        else:
            out.append(p[-1][3:] if p[-1].startswith("no ") else f"no {p[-1]}")
    for p in added:
        _navigate(current, p[:-1], out)
        out.append(p[-1])
        if p in headers_want:
            current.append(p[-1])
    _navigate(current, (), out)
    return out
