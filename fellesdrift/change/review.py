"""One plan of a change, the way its reviewer reads it: provision, converge, network, invoice.

:func:`gather` makes the four parts (each changes nothing):

- provision: Pulumi's preview per stack, resource by resource (:mod:`.preview`);
- converge: Ansible's ``--check --diff`` on the existing hosts the change touches
  (:mod:`.check`);
- network: per router the commands that would be pushed (:mod:`.routers`);
- invoice: each selected municipality's monthly amount before and after (:mod:`.invoices`).

:func:`terminal`, :func:`markdown` and :meth:`Review.as_dict` render it. Markdown is for a
change request's comment: every value from the inventory is escaped (a municipality's names
are untrusted), every diff sits in a fenced block no line of it can close.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fellesdrift.change import apply as changes
from fellesdrift.change import check, invoices, preview, routers
from fellesdrift.environment import Environment
from fellesdrift.inventory.model import Inventory
from fellesdrift.pipeline import job as pipeline
from fellesdrift.provision import hosts as lab_hosts
from fellesdrift.provision import stacks as provision

Say = Callable[[str], None]


@dataclass
class Review:
    env: str
    core: bool
    municipalities: list[str]
    stacks: list[provision.StackResult]
    steps: dict[str, list[preview.Step]]
    converge: check.ConvergePlan
    network: list[routers.RouterPlan]
    invoices: list[invoices.Delta]
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(s.error for s in self.stacks) and not self.converge.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "env": self.env,
            "selection": {"core": self.core, "municipalities": self.municipalities},
            "stacks": [{"stack": r.stack, "changes": r.changes, "changed": r.changed,
                        "error": r.error,
                        "steps": [s.as_dict() for s in self.steps.get(r.stack, [])]}
                       | ({"declared": [{"type": t, "name": n} for t, n in r.declared]}
                          if r.declared else {}) for r in self.stacks],
            "converge": self.converge.as_dict(),
            "network": [r.as_dict() for r in self.network],
            "invoices": [d.as_dict() for d in self.invoices],
            "seconds": self.seconds,
        }


def gather(model: Inventory, environ: Environment, selection: pipeline.Selection,
           workers: int = 3, say: Say = lambda _: None) -> Review:
    """Every part of the plan of ``selection``; changes nothing (the check's inventory is a
    file of its own beside the lab's)."""
    env = environ.name
    seconds: dict[str, float] = {}
    started = time.monotonic()
    settings = pipeline.stack_settings(environ, model, say=lambda _: None, build=False)
    steps: dict[str, list[preview.Step]] = {}
    stacks = pipeline.provision_all(selection, environ.folder, settings, say=say,
                                    workers=workers, act=preview.previewer(steps))
    seconds["provision"] = round(time.monotonic() - started, 1)
    provisioned = [] if environ.mocks else lab_hosts.load(env)
    every, new = check.planned_hosts(model, provisioned)
    changed, touched = check.touched(model, env, every, selection.municipalities,
                                     list(selection.destroy))
    if not provisioned:
        converge = check.ConvergePlan(changed=changed, skipped=f"no host is provisioned in "
                                      f"{env}: its first apply converges every host", lab=False)
    elif not touched:
        converge = check.ConvergePlan(skipped="no municipality changed since its last apply")
    else:
        say(f"checking {len(touched)} host(s) with ansible --check --diff …")
        converge = check.check(model, env, every, touched, {h.name for h in new})
        converge.changed = changed
    seconds["converge"] = converge.seconds
    started = time.monotonic()
    lab = {h.name: h for h in provisioned}
    network = routers.plan(model, env, routers.routers_of(model, changed), lab) \
        if changed else []
    seconds["network"] = round(time.monotonic() - started, 1)
    deltas = changes.invoice_deltas(model, env, selection.municipalities)
    return Review(env, selection.core, selection.municipalities, stacks, steps, converge,
                  network, deltas, seconds=seconds)


# --- Rendering ---------------------------------------------------------------------------------

def changes_text(counts: dict[str, int]) -> str:
    """Pulumi's counts per operation as a reader says them."""
    moved = {op: n for op, n in counts.items() if op != "same" and n}
    same = counts.get("same", 0)
    if not moved:
        return f"no changes ({same} unchanged)"
    return ", ".join(f"{n} to {op}" for op, n in sorted(moved.items())) + f", {same} unchanged"


@dataclass(frozen=True)
class Block:
    """A part of the rendered plan: a heading, its lines (plain text), and fenced texts."""

    text: str
    level: int = 0  # 0: a part's line, 1: an item in it, 2: a detail of an item
    fenced: str = ""  # a diff or commands, shown as is
    lang: str = ""


def blocks(review: Review) -> list[tuple[str, list[Block]]]:
    """The plan as parts of blocks, the one order every renderer follows."""
    return [("provision", _provision(review)), ("converge", _converge(review)),
            ("network", _network(review)), ("invoice", _invoice(review))]


def _provision(review: Review) -> list[Block]:
    out: list[Block] = []
    if not any(r.error or r.changed for r in review.stacks):
        same = sum(r.changes.get("same", 0) for r in review.stacks)
        return [Block(f"no changes in {len(review.stacks)} stack(s) ({same} resources "
                      "unchanged)")]
    for r in review.stacks:
        if r.error:
            out.append(Block(f"FAILED {r.error}"))
            continue
        out.append(Block(f"{r.stack}: {changes_text(r.changes)}"))
        for s in review.steps.get(r.stack, []):
            out.append(Block(str(s), 1))
            out += [Block(str(p), 2) for p in s.properties]
        out += [Block(f"+ {t} {n}", 1) for t, n in r.declared if not t.startswith(
            "fellesdrift:")]
    return out


def _converge(review: Review) -> list[Block]:
    c = review.converge
    if c.skipped:
        return [Block(f"not checked: {c.skipped}")]
    checked = f"{len(c.hosts)} host(s) checked in {c.seconds:.0f} s"
    if c.unchanged and not any(c.may_change.values()):
        return [Block(f"nothing would change ({checked}: {', '.join(sorted(c.hosts))})")]
    out = [Block(f"{checked} for {', '.join(c.changed)}: {', '.join(sorted(c.hosts))}")]
    out += [Block(f"FAILED {f}") for f in c.failures]
    for host, tasks in sorted(c.hosts.items()):
        may = c.may_change.get(host, [])
        if not tasks and not may:
            out.append(Block(f"{host}: nothing would change", 1))
            continue
        if tasks:
            out.append(Block(f"{host}: {len(tasks)} task(s) would change", 1))
            out += [Block(t.key + (" (handler)" if t.handler else ""), 2, t.diff, "diff")
                    for t in tasks]
        if may:
            out.append(Block(f"{host}: {len(may)} command(s) may change (Ansible cannot check "
                             "a command without running it)", 1))
            out += [Block(t.key + (" (handler)" if t.handler else ""), 2) for t in may]
    out += [Block(f"{h}: new host, every task of its role will run", 1) for h in c.new]
    return out


def _network(review: Review) -> list[Block]:
    if not review.network:
        return [Block("no router is touched")]
    if not any(r.changes for r in review.network):
        return [Block(f"no router would change ({len(review.network)} compared: "
                      f"{', '.join(r.device for r in review.network)})")]
    out = []
    for r in review.network:
        against = {"running": "its running configuration",
                   "archived": "the configuration archived at its last push",
                   "new": "nothing (a new router)"}[r.base]
        if not r.changes:
            out.append(Block(f"{r.device}: unchanged (against {against})"))
            continue
        out.append(Block(f"{r.device}: {len(r.commands)} command(s) against {against}"
                         + (f"; running configuration {r.note}" if r.note else ""), 0,
                         "\n".join(r.commands) + "\n", "text"))
    return out


def _invoice(review: Review) -> list[Block]:
    if not review.invoices:
        return [Block("no municipality selected")]
    if all(d.before is not None and not d.lines for d in review.invoices):
        return [Block(f"unchanged for {', '.join(d.municipality for d in review.invoices)}")]
    out = []
    for d in review.invoices:
        out.append(Block(d.summary()))
        out += [Block(str(line), 1) for line in d.lines]
    return out


def terminal(review: Review) -> list[str]:
    """The plan as plain lines for a terminal (print them with markup off)."""
    lines: list[str] = []
    for part, found in blocks(review):
        if len(found) == 1 and not found[0].fenced:
            lines.append(f"{part}: {found[0].text}")
            continue
        lines.append(f"{part}:")
        for b in found:
            indent = "  " * (b.level + 1)
            lines.append(indent + b.text)
            lines += [indent + "  " + ln for ln in b.fenced.splitlines()]
    return lines


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>()#+\-.!|~&:@=\"'])")


def md_text(value: str) -> str:
    """``value`` as literal text in Markdown (CommonMark and GitLab/GitHub flavours): one line,
    every character that could start markup backslash-escaped (an HTML tag, a link, emphasis,
    a table cell, a mention or an autolink stays text)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(value.split()))


def md_fence(text: str, lang: str = "") -> str:
    """``text`` in a fenced code block no line of it can close: the fence is one backtick
    longer than the longest run of backticks in it (at least three)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = text if text.endswith("\n") else text + "\n"
    return f"{fence}{lang}\n{body}{fence}\n"


def markdown(review: Review) -> str:
    """The plan as Markdown for a change request's comment."""
    selected = ", ".join(review.municipalities) + (" and the centre" if review.core else "")
    out = [f"## Plan for {md_text(review.env)}: {md_text(selected or 'nothing selected')}\n"]
    for part, found in blocks(review):
        out.append(f"\n### {part.capitalize()}\n\n")
        for b in found:
            bullet = "  " * b.level + "- "
            out.append(f"{bullet}{md_text(b.text)}\n")
            if b.fenced:
                out.append(_md_block(b.fenced, b.lang, "  " * (b.level + 1)))
    return "".join(out)


#: A diff or command list longer than this is folded (<details>): the comment stays readable.
FOLDED = 20


def _md_block(text: str, lang: str, pad: str) -> str:
    """A fenced block inside a list item (indented by ``pad``), folded when it is long."""
    lines = md_fence(text, lang).splitlines(True)
    if len(lines) - 2 > FOLDED:
        lines = [f"<details><summary>{len(lines) - 2} lines</summary>\n", "\n", *lines,
                 "\n", "</details>\n"]
    return "\n" + "".join(pad + ln if ln.strip() else ln for ln in lines) + "\n"
