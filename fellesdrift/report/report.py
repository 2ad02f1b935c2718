"""The report: what the centre runs, for whom, at what price, and whether every site converged.

:func:`build` gathers it into one JSON-ready dict (written as ``report.json``, the pipeline's
machine-readable result); :func:`write` renders it with ``templates/report/`` into a
self-contained HTML file (inline CSS, the topology as inline SVG, no external assets) and a
Markdown twin (its picture in ``topology.svg`` beside it).

Per municipality it shows the monthly invoice (:mod:`fellesdrift.invoice`, the one computation),
what changed since the last kept invoice and why (:mod:`fellesdrift.changes`, against
``invoices/<env>/``) and the 36-month forecast (:mod:`fellesdrift.forecast`). Each municipality
also gets a page of its own, ``<slug>/index.html`` (and ``<slug>/report.json``) beside the
report, holding its data only, so the centre can hand it over.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from fellesdrift import syntax
from fellesdrift.change import audit
from fellesdrift.inventory.model import Inventory, Municipality, NetworkDevice, Site
from fellesdrift.paths import ROOT
from fellesdrift.plan import topology
from fellesdrift.provision.hosts import Host
from fellesdrift.report import billing, changes, forecast, invoice, status

TEMPLATES = ROOT / "templates" / "report"

#: A site router is due for replacement when its lease (or support) ends within this many
#: months of the report's date, and overdue once the lease has ended: a replacement takes
#: procurement and a site visit, so the centre plans it a year ahead.
REPLACEMENT_NOTICE_MONTHS = 12


# --- Equipment -------------------------------------------------------------------------------


def months_before(day: date, months: int) -> date:
    """The same day ``months`` earlier (the month's last day when it has fewer days)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def replacement(device: NetworkDevice | None, today: date) -> dict[str, Any]:
    """Whether a site router is due for replacement (see :data:`REPLACEMENT_NOTICE_MONTHS`):
    state ``overdue``, ``due``, ``ok``, or ``none`` when no router is registered."""
    if device is None:
        return {"state": "none", "due_from": None, "text": "no router registered"}
    due_from = months_before(device.lease_end, REPLACEMENT_NOTICE_MONTHS)
    if device.lease_end < today:
        state, text = "overdue", f"overdue: the lease ended {device.lease_end}"
    elif due_from <= today:
        days = (device.lease_end - today).days
        state, text = "due", f"due: the lease ends in {days} day(s)"
    else:
        state, text = "ok", f"not yet; due from {due_from}"
    return {"state": state, "due_from": due_from.isoformat(), "text": text}


# --- The report's content ----------------------------------------------------------------------


def _site(m: Municipality, site: Site, row: status.SiteStatus, centre_prefix: str,
          today: date) -> dict[str, Any]:
    d = site.device
    return {
        "id": site.id, "name": site.name, "kind": site.kind, "address": site.address,
        "users": site.users, "lan": site.lan_prefix, "hosts": list(row.hosts),
        "link": {"access": site.link.access, "provider": site.link.provider,
                 "down_mbps": site.link.down_mbps, "up_mbps": site.link.up_mbps,
                 "vlan": site.link.vlan, "subnet": centre_prefix},
        "device": None if d is None else {
            "platform": d.platform, "model": d.model, "serial": d.serial,
            "installed": d.installed.isoformat(), "lease_end": d.lease_end.isoformat()},
        "replacement": replacement(d, today),
        "status": row.as_dict(),
    }


def build(model: Inventory, env: str, rows: list[status.SiteStatus],
          today: date | None = None, invoices: Path | None = None) -> dict[str, Any]:
    """Everything the report shows, JSON-ready (amounts as exact decimal strings). The kept
    invoices it compares with are in ``invoices/<env>/`` (default: invoices/ of the checkout)."""
    today = today or datetime.now(UTC).date()
    kept = invoices or billing.default_root()
    centre = model.centre
    levels = {lv.id: lv for lv in centre.service_levels}
    catalogue = {s.id: s for s in centre.services}
    by_site = {(r.municipality, r.site): r for r in rows}
    municipalities = []
    for m in model.municipalities:
        comparison = changes.since_last(kept, env, centre, m)
        bill = comparison.current
        sites = [_site(m, s, by_site[m.slug, s.id], topology.link_subnet(centre, s), today)
                 for s in m.sites]
        municipalities.append({
            "slug": m.slug, "name": m.name, "code": m.code,
            "contacts": [c.model_dump() for c in m.contacts],
            "services": [{
                "service": sub.service, "name": catalogue[sub.service].name,
                "tier": sub.tier, "tier_name": levels[sub.tier].name,
                "support_hours": levels[sub.tier].support_hours,
                "response_hours": levels[sub.tier].response_hours,
                "availability_percent": str(levels[sub.tier].availability_percent),
            } for sub in m.services],
            "users": m.users.model_dump() | {"total": m.users.total()},
            "sites": sites,
            "invoice": bill.as_dict(),
            "changes": comparison.as_dict(),
            "forecast": forecast.forecast(centre, m, today).as_dict(),
            "applies": [c.as_dict() for c in audit.last_changes(env, m.slug)],
            "page": f"{m.slug}/index.html",
            "converged": sum(s["status"]["site_converged"] for s in sites),
            "replacements_due": sum(s["replacement"]["state"] in ("due", "overdue")
                                    for s in sites),
        })
    centre_row = by_site[status.CENTRE, status.CENTRE]
    total = sum((Decimal(m["invoice"]["total"]) for m in municipalities), Decimal("0.00"))
    ahead = sum((Decimal(m["forecast"]["total"]) for m in municipalities), Decimal("0.00"))
    return {
        "ok": all(r.ok for r in rows),
        "env": env,
        "generated": datetime.now(UTC).isoformat(timespec="seconds"),
        "date": today.isoformat(),
        "replacement_notice_months": REPLACEMENT_NOTICE_MONTHS,
        "forecast_months": forecast.HORIZON_MONTHS,
        "invoices": str(kept / env),
        "centre": {
            "name": centre.name,
            "networks": [{"name": n.name, "prefix": n.prefix, "router": n.router}
                         for n in topology.centre_networks(centre)],
            "shared_hosts": [h.model_dump() for h in centre.shared_hosts],
            "service_levels": [{"id": lv.id, "name": lv.name, "support_hours": lv.support_hours,
                                "response_hours": lv.response_hours,
                                "availability_percent": str(lv.availability_percent)}
                               for lv in centre.service_levels],
            "status": centre_row.as_dict(),
        },
        "municipalities": municipalities,
        "totals": {
            "municipalities": len(municipalities),
            "sites": sum(len(m["sites"]) for m in municipalities),
            "sites_converged": sum(m["converged"] for m in municipalities),
            "users": sum(m["users"]["total"] for m in municipalities),
            "invoiced": str(total),
            "forecast": str(ahead),
            "replacements_due": sum(m["replacements_due"] for m in municipalities),
        },
        "status": status.summary(env, rows),
    }


# --- The topology picture ----------------------------------------------------------------------

_W = 1000
_CENTRE_X, _CENTRE_W = 20, 330
_TRUNK_X = 400
_GROUP_X, _GROUP_W = 600, 380
_NODE_X, _NODE_W, _NODE_H = 615, 350, 30
_ROW = 38
_LINE = 16


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    c = f' class="{cls}"' if cls else ""
    a = "" if anchor == "start" else f' text-anchor="{anchor}"'
    return f'<text x="{x}" y="{y}"{c}{a}>{escape(text)}</text>'


def mbps(down: int, up: int) -> str:
    """A link's bandwidth as the picture labels it."""
    def one(n: int) -> str:
        return f"{n // 1000} Gbit/s" if n % 1000 == 0 else f"{n} Mbit/s"
    return one(down) if down == up else f"{one(down)} ↓ / {one(up)} ↑"


def topology_svg(report: dict[str, Any]) -> str:
    """The centre with its networks and shared hosts, each municipality with its sites, and
    every site's broadband link to the core router labelled with its bandwidth. Site nodes
    are coloured by convergence; each is a ``<g class="site-node" data-site="slug-id">``."""
    centre = report["centre"]
    body: list[str] = []
    # The municipalities' sites, one row each, down the right-hand column.
    y = 20
    site_ys: list[float] = []
    for m in report["municipalities"]:
        top = y
        y += 24
        nodes = []
        for s in m["sites"]:
            cy = y + _NODE_H / 2
            site_ys.append(cy)
            link = s["link"]
            state = s["status"]["state"]
            label = f"{mbps(link['down_mbps'], link['up_mbps'])} · {link['access']}"
            body.append(f'<g class="link"><title>{escape(m["name"])} {escape(s["name"])}: '
                        f'{escape(link["provider"])} VLAN {link["vlan"]}, {link["subnet"]}'
                        f'</title><line x1="{_TRUNK_X}" y1="{cy}" x2="{_NODE_X}" y2="{cy}"/>'
                        + _text(_TRUNK_X + 10, cy - 5, label, "bw") + "</g>")
            nodes.append(
                f'<g class="site-node {state}" data-site="{escape(m["slug"])}-'
                f'{escape(s["id"])}"><title>{escape(s["name"])}: {escape(s["status"]["state"])}'
                f'</title><rect x="{_NODE_X}" y="{y}" width="{_NODE_W}" height="{_NODE_H}" '
                f'rx="5"/>' + _text(_NODE_X + 10, y + 19, s["name"], "site")
                + _text(_NODE_X + _NODE_W - 10, y + 19, s["lan"], "small", "end") + "</g>")
            y += _ROW
        body.append(f'<g class="municipality" data-municipality="{escape(m["slug"])}">'
                    f'<rect x="{_GROUP_X}" y="{top}" width="{_GROUP_W}" '
                    f'height="{y - top + 2}" rx="8"/>'
                    + _text(_GROUP_X + 12, top + 17, f"{m['name']} ({m['code']})", "title")
                    + "".join(nodes) + "</g>")
        y += 14
    # The centre, on the left: its core router, networks and shared hosts.
    lines: list[str] = []
    cy = 20 + 30
    lines.append(_text(_CENTRE_X + 14, cy, centre["name"], "title"))
    cy += 16
    core_y = cy + _NODE_H / 2
    lines.append(f'<g class="core-node {centre["status"]["state"]}"><rect x="{_CENTRE_X + 14}" '
                 f'y="{cy}" width="{_CENTRE_W - 28}" height="{_NODE_H}" rx="5"/>'
                 + _text(_CENTRE_X + 24, cy + 19, "core-router", "site") + "</g>")
    cy += _NODE_H + 26
    lines.append(_text(_CENTRE_X + 14, cy, "Networks", "heading"))
    for n in centre["networks"]:
        cy += _LINE
        lines.append(_text(_CENTRE_X + 24, cy, n["name"]) + _text(
            _CENTRE_X + _CENTRE_W - 14, cy, n["prefix"], "small", "end"))
    cy += 26
    lines.append(_text(_CENTRE_X + 14, cy, "Shared hosts", "heading"))
    for h in centre["shared_hosts"]:
        cy += _LINE
        lines.append(_text(_CENTRE_X + 24, cy, f"{h['hostname']} ({h['role']})") + _text(
            _CENTRE_X + _CENTRE_W - 14, cy, h["address"], "small", "end"))
    cy += 20
    height = max(y, cy + 20)
    trunk = [min([core_y, *site_ys]), max([core_y, *site_ys])]
    picture = [
        f'<g class="centre"><rect x="{_CENTRE_X}" y="20" width="{_CENTRE_W}" '
        f'height="{cy - 20}" rx="8"/>' + "".join(lines) + "</g>",
        f'<g class="link trunk"><line x1="{_CENTRE_X + _CENTRE_W - 14}" y1="{core_y}" '
        f'x2="{_TRUNK_X}" y2="{core_y}"/><line x1="{_TRUNK_X}" y1="{trunk[0]}" x2="{_TRUNK_X}" '
        f'y2="{trunk[1]}"/></g>',
        *body,
    ]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 {_W} '
            f'{height}" width="{_W}" height="{height}" role="img" aria-label="Topology: the '
            f'centre and every site\'s broadband link">' + _SVG_STYLE + "".join(picture)
            + "</svg>")


_SVG_STYLE = (
    "<style>"
    "text{font:13px system-ui,sans-serif;fill:#1b2733}"
    ".title{font-weight:600;font-size:14px}.heading{font-weight:600;fill:#51606f}"
    ".small{font-size:11px;fill:#51606f}.bw{font-size:11px;fill:#2d5f8b}"
    ".centre>rect{fill:#eef3f8;stroke:#8aa4bf}"
    ".municipality>rect{fill:#f7f7f2;stroke:#c9c6b5}"
    ".link line{stroke:#2d5f8b;stroke-width:2}"
    ".site-node rect,.core-node rect{stroke:#51606f;fill:#eceff1}"
    ".ok rect{fill:#d8f0dc;stroke:#2e7d32}.failed rect{fill:#f9d9d6;stroke:#c62828}"
    ".unknown rect{fill:#eceff1;stroke:#78909c;stroke-dasharray:4 3}"
    "</style>")


# --- Writing -------------------------------------------------------------------------------


def default_folder(env: str) -> Path:
    """reports/<env>/ of the checkout, relative to the working folder when inside it."""
    folder = ROOT / "reports" / env
    try:
        return folder.relative_to(Path.cwd())
    except ValueError:
        return folder


def _nok(amount: str | Decimal) -> str:
    return invoice.nok(Decimal(amount))


def _signed(amount: str | Decimal) -> str:
    """A change of an amount: ``+1 300.00 NOK``, ``-650.00 NOK``, ``0.00 NOK``."""
    value = Decimal(amount)
    return ("+" if value > 0 else "") + invoice.nok(value)


def environment() -> jinja2.Environment:
    """HTML templates escape every value (autoescape); the Markdown template writes every text
    value through ``markdown_text`` (:mod:`fellesdrift.syntax`)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), undefined=jinja2.StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(syntax.FILTERS)
    env.filters["nok"] = _nok
    env.filters["signed"] = _signed
    return env


def page(report: dict[str, Any], slug: str) -> dict[str, Any]:
    """A municipality's own page: its part of the report and the centre's name and service
    levels, nothing of any other municipality (no summary, totals or topology of all)."""
    [m] = [m for m in report["municipalities"] if m["slug"] == slug]
    return {key: report[key] for key in ("env", "generated", "date",
                                         "replacement_notice_months", "forecast_months")} | {
        "centre": {"name": report["centre"]["name"],
                   "service_levels": report["centre"]["service_levels"]},
        "municipality": m}


@dataclass(frozen=True)
class Written:
    html: Path
    markdown: Path
    json: Path
    svg: Path
    ok: bool
    #: Each municipality's own page, by slug: ``<out>/<slug>/index.html``.
    pages: dict[str, Path] = field(default_factory=dict)


def write(model: Inventory, env: str, out: Path, hosts: Iterable[Host] | None = None,
          today: date | None = None, invoices: Path | None = None) -> Written:
    """Write report.html, report.md (with topology.svg) and report.json into ``out``, and each
    municipality's page, ``<slug>/index.html`` with its ``<slug>/report.json``. ``invoices``:
    where the kept invoices are (default: invoices/ of the checkout)."""
    rows = status.site_status(model, env, hosts)
    data = build(model, env, rows, today, invoices)
    svg = topology_svg(data)
    out.mkdir(parents=True, exist_ok=True)
    templates = environment()
    written = Written(out / "report.html", out / "report.md", out / "report.json",
                      out / "topology.svg", bool(data["ok"]),
                      {m["slug"]: out / m["page"] for m in data["municipalities"]})
    written.svg.write_text(svg + "\n")
    written.html.write_text(templates.get_template("report.html.j2").render(
        report=data, svg=Markup(svg)))
    written.markdown.write_text(templates.get_template("report.md.j2").render(
        report=data, svg_file=written.svg.name))
    written.json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    own = templates.get_template("municipality.html.j2")
    for slug, path in written.pages.items():
        content = page(data, slug)
        path.parent.mkdir(exist_ok=True)
        path.write_text(own.render(page=content))
        path.with_name("report.json").write_text(
            json.dumps(content, indent=2, ensure_ascii=False) + "\n")
    return written
