"""``fellesdrift invoice``: the month's EHF invoices (or credit notes), checked and kept.

The CLI calls :func:`register` to add the command to its app.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import Inventory
from fellesdrift.paths import INVENTORIES
from fellesdrift.report import billing, peppol
from fellesdrift.report.billing import BillingError, Month
from fellesdrift.report.ehf import Document
from fellesdrift.report.invoice import nok

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def register(app: typer.Typer) -> None:
    app.command("invoice")(invoice_cmd)


def _file(paths: list[Path], stem: str) -> Path:
    """The inventory file a slug (or the centre) comes from, as the user named the paths."""
    for p in paths:
        if p.is_dir() and (p / f"{stem}.yaml").is_file():
            return p / f"{stem}.yaml"
        if p.is_file() and p.stem == stem:
            return p
    return Path(f"{stem}.yaml")


def _selected(model: Inventory, slugs: list[str]) -> list[str]:
    known = [m.slug for m in model.municipalities]
    unknown = [s for s in slugs if s not in known]
    if unknown:
        raise BillingError(f"no municipality {', '.join(unknown)}; the inventory has "
                           f"{', '.join(known)}")
    return list(dict.fromkeys(slugs)) or known


def _invoices(model: Inventory, paths: list[Path], month: Month, month_text: str,
              slugs: list[str], issued: date) -> list[Document]:
    refusals, docs = [], []
    for slug in slugs:
        m = model.municipality(slug)
        of_centre, of_municipality = billing.missing(model.centre, m)
        if of_centre:
            refusals.append(f"{_file(paths, 'operations-centre')}: invoicing {slug} needs "
                            f"{', '.join(of_centre)}; add them (docs/invoicing.md)")
        if of_municipality:
            refusals.append(f"{_file(paths, slug)}: invoicing {slug} needs "
                            f"{', '.join(of_municipality)}; add them (docs/invoicing.md)")
        billed = month.open_invoice(slug)
        if billed is not None:
            refusals.append(f"{slug}: {month_text} is already invoiced ({billed.number}, "
                            f"{month.folder / billed.number}.xml); to bill it again, credit it "
                            f"first: fellesdrift invoice --month {month_text} -m {slug} --credit")
        if not (of_centre or of_municipality or billed):
            docs.append(billing.document(model.centre, m, month_text,
                                         month.next_number(m.code, slug), issued))
    if refusals:
        raise BillingError("\n".join(dict.fromkeys(refusals)))
    return docs


def _credit_notes(month: Month, month_text: str, slugs: list[str], chosen: bool,
                  issued: date) -> list[Document]:
    docs, refusals = [], []
    for slug in slugs:
        billed = month.open_invoice(slug)
        if billed is not None:
            docs.append(billing.credit_note(billed, issued))
        elif chosen:
            refusals.append(f"{slug}: no invoice of {month_text} to credit (in {month.folder})")
    if refusals:
        raise BillingError("\n".join(refusals))
    if not docs:
        raise BillingError(f"no invoice of {month_text} to credit (in {month.folder})")
    return docs


def invoice_cmd(
    month: Annotated[str, typer.Option("--month", help="The month billed, YYYY-MM.",
                                       show_default=False)],
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Inventory files or folders (default: inventories/).", show_default=False)] = None,
    municipality: Annotated[list[str] | None, typer.Option(
        "-m", "--municipality", help="Only this municipality (repeatable; default: all).",
        show_default=False)] = None,
    out_dir: Annotated[Path | None, typer.Option(
        "--out", help="Where the invoices are kept (default: invoices/ of the checkout); the "
        "month's documents go to <out>/<env>/<YYYY-MM>/.", show_default=False)] = None,
    env: Annotated[str, typer.Option("--env", help="Lab environment name.")] = "lab",
    credit: Annotated[bool, typer.Option(
        "--credit", help="Write credit notes cancelling the month's open invoices instead (so "
        "the month can be invoiced again).")] = False,
    issued: Annotated[str | None, typer.Option(
        "--date", help="Issue date, YYYY-MM-DD (default: today).", show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a machine-readable result.")
                       ] = False,
) -> None:
    """Write the month's EHF invoices (Peppol BIS Billing 3.0, UBL 2.1), one per municipality.

    One line per service and service area (users × price) or per service of sites (sites ×
    price), the tier in each line's description, totals, VAT breakdown, due date and buyer
    reference; every document passes the official EN 16931 and Peppol rules before it is kept
    in invoices/<env>/<YYYY-MM>/ with ledger.csv, all lines for the centre's ledger. A month
    already invoiced is refused until --credit has written a credit note for it.
    """
    try:
        written = _run(paths or [INVENTORIES], month, municipality or [], out_dir, env, credit,
                       issued)
    except BillingError as e:
        for line in str(e).splitlines():
            console.print(f"error: {line}", markup=False, soft_wrap=True)
        console.print("nothing was written.")
        raise typer.Exit(1) from None
    except peppol.RulesError as e:
        console.print(f"error: {e}; run scripts/tools/peppol-rules.sh (nothing was written)",
                      markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        out.print_json(data=written)
        return
    for d in written["documents"]:
        out.print(f"{d['municipality']}: {d['kind'].replace('_', ' ')} {d['number']} "
                  f"{nok(Decimal(d['total_with_vat']))} incl. VAT → {d['file']}", markup=False,
                  soft_wrap=True)
        for w in d["warnings"]:
            out.print(f"  warning [{w['rule']}] {w['text']}", markup=False, soft_wrap=True)
    out.print(f"ledger: {written['ledger']}", markup=False, soft_wrap=True)


def _run(paths: list[Path], month_text: str, slugs: list[str], out_dir: Path | None, env: str,
         credit: bool, issued_text: str | None) -> dict[str, Any]:
    try:
        issued = date.fromisoformat(issued_text) if issued_text else date.today()
    except ValueError:
        raise BillingError(f"--date {issued_text!r} is not a date; write it YYYY-MM-DD") from None
    month = Month.of(out_dir or billing.default_root(), env, month_text)
    model = inventory.load(paths)
    with month.locked():
        return _bill(model, paths, month, month_text, slugs, env, credit, issued)


def _bill(model: Inventory, paths: list[Path], month: Month, month_text: str, slugs: list[str],
          env: str, credit: bool, issued: date) -> dict[str, Any]:
    chosen = _selected(model, slugs)
    docs = (_credit_notes(month, month_text, chosen, bool(slugs), issued) if credit else
            _invoices(model, paths, month, month_text, chosen, issued))
    xml = billing.xml_of(docs)
    validator = peppol.Validator()
    found = dict(zip(xml, validator.check_all(list(xml.values())), strict=True))
    rejected = [f"{number}: {f}" for number, fs in found.items() for f in peppol.fatal(fs)]
    if rejected:
        raise BillingError("the official rules reject these documents:\n" + "\n".join(rejected))
    files = month.keep(docs, xml)
    return {"ok": True, "env": env, "month": month_text, "ledger": str(month.ledger),
            "documents": [{"municipality": d.bill.municipality, "kind": d.kind,
                           "number": d.number, "file": str(f), "total": str(d.bill.total),
                           "vat": str(d.bill.vat_total),
                           "total_with_vat": str(d.bill.total_with_vat),
                           "due_date": d.due_date.isoformat() if d.due_date else None,
                           "warnings": [w.as_dict() for w in found[d.number]]}
                          for d, f in zip(docs, files, strict=True)]}
