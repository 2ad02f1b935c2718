"""Issuing and keeping invoices: each month's EHF documents, numbered, never billed twice.

A month's documents live in ``invoices/<env>/<YYYY-MM>/`` (git-ignored):

- ``<number>.xml`` — the EHF document (:mod:`fellesdrift.ehf`), ``<number>.json`` — what it
  billed, as issued (the record a credit note is written from, whatever the inventory says by
  then);
- ``ledger.csv`` — every line of every document of the month, for the centre's own ledger
  (credit notes with negative amounts), rewritten after each run.

Numbers: invoice ``<YYYYMM>-<code>-<n>``, its credit note ``K<YYYYMM>-<code>-<n>``. A
municipality has an *open* invoice for a month when its last invoice there has no credit note; a
new invoice is refused while one is open, and ``credit`` writes the credit note that closes it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fellesdrift import files
from fellesdrift.inventory.model import Municipality, OperationsCentre
from fellesdrift.paths import ROOT
from fellesdrift.report import ehf
from fellesdrift.report.ehf import Document, Party
from fellesdrift.report.invoice import Invoice, InvoiceLine, invoice

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
LEDGER_COLUMNS = ("document", "kind", "issue_date", "due_date", "period_start", "period_end",
                  "municipality", "organisation_number", "buyer_reference", "line", "service",
                  "tier", "area", "quantity", "unit_price", "amount", "vat_rate")


class BillingError(ValueError):
    """Something a user must fix before anything is billed; nothing was written."""


def default_root() -> Path:
    """invoices/ of the checkout, relative to the working folder when inside it."""
    folder = ROOT / "invoices"
    try:
        return folder.relative_to(Path.cwd())
    except ValueError:
        return folder


def period(month: str) -> tuple[date, date]:
    """The first and last day of ``YYYY-MM``."""
    m = _MONTH.match(month)
    if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
        raise BillingError(f"--month {month!r} is not a month; write it YYYY-MM, like 2026-12")
    first = date(int(m.group(1)), int(m.group(2)), 1)
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return first, following - timedelta(days=1)


def missing(centre: OperationsCentre, m: Municipality) -> tuple[list[str], list[str]]:
    """What invoicing ``m`` needs and the files lack: (centre fields, municipality fields)."""
    of_centre = [f for f in ("organisation_number", "payment_terms_days")
                 if getattr(centre, f) is None]
    bill = invoice(centre, m)
    of_centre += [f"vat_rate of service {s}" for s in bill.unpriced_vat]
    of_municipality = [f for f in ("organisation_number", "buyer_reference")
                       if getattr(m, f) is None]
    if not any(c.role == "invoice" for c in m.contacts):
        of_municipality.append("a contact with role: invoice")
    return of_centre, of_municipality


def document(centre: OperationsCentre, m: Municipality, month: str, number: str,
             issued: date) -> Document:
    """The invoice of ``m`` for ``month``, from the inventory as it is (see :func:`missing`)."""
    assert centre.organisation_number and centre.payment_terms_days is not None
    assert m.organisation_number and m.buyer_reference
    contact = next(c for c in m.contacts if c.role == "invoice")
    return Document(
        kind="invoice", number=number, issue_date=issued, period=period(month),
        seller=Party(centre.name, centre.organisation_number, centre.vat_number),
        buyer=Party(f"{m.name} kommune", m.organisation_number, None, contact.name,
                    contact.email, contact.phone),
        buyer_reference=m.buyer_reference, bill=invoice(centre, m),
        due_date=issued + timedelta(days=centre.payment_terms_days),
        bank_account=centre.bank_account)


def credit_note(original: Document, issued: date) -> Document:
    """The credit note cancelling ``original``: the same lines and amounts, referring to it."""
    return Document(
        kind="credit_note", number=f"K{original.number}", issue_date=issued,
        period=original.period, seller=original.seller, buyer=original.buyer,
        buyer_reference=original.buyer_reference, bill=original.bill,
        credits=(original.number, original.issue_date))


# --- Keeping ----------------------------------------------------------------------------------


def record(doc: Document) -> dict[str, Any]:
    """The document as JSON data: everything needed to write it again."""
    return {"kind": doc.kind, "number": doc.number, "issue_date": doc.issue_date.isoformat(),
            "due_date": doc.due_date.isoformat() if doc.due_date else None,
            "period": [d.isoformat() for d in doc.period], "seller": asdict(doc.seller),
            "buyer": asdict(doc.buyer), "buyer_reference": doc.buyer_reference,
            "bank_account": doc.bank_account, "municipality": doc.bill.municipality,
            "credits": [doc.credits[0], doc.credits[1].isoformat()] if doc.credits else None,
            "lines": [{k: (str(v) if isinstance(v, Decimal) else v)
                       for k, v in asdict(line).items()} for line in doc.bill.lines],
            "totals": doc.bill.as_dict()}


def from_record(data: dict[str, Any]) -> Document:
    lines = tuple(InvoiceLine(**(line | {"unit_price": Decimal(line["unit_price"]),
                                         "vat_rate": Decimal(line["vat_rate"])}))
                  for line in data["lines"])
    credits = data["credits"]
    return Document(
        kind=data["kind"], number=data["number"],
        issue_date=date.fromisoformat(data["issue_date"]),
        period=(date.fromisoformat(data["period"][0]), date.fromisoformat(data["period"][1])),
        seller=Party(**data["seller"]), buyer=Party(**data["buyer"]),
        buyer_reference=data["buyer_reference"], bill=Invoice(data["municipality"], lines),
        due_date=date.fromisoformat(data["due_date"]) if data["due_date"] else None,
        bank_account=data["bank_account"],
        credits=(credits[0], date.fromisoformat(credits[1])) if credits else None)


@dataclass(frozen=True)
class Month:
    """One month's folder of one environment."""

    folder: Path

    @classmethod
    def of(cls, root: Path, env: str, month: str) -> Month:
        period(month)
        return cls(root / env / month)

    def documents(self) -> list[Document]:
        """Every document kept for the month, in the order they were issued."""
        if not self.folder.is_dir():
            return []
        docs = [from_record(json.loads(p.read_text())) for p in self.folder.glob("*.json")]
        return sorted(docs, key=lambda d: (d.bill.municipality, _sequence(d.number),
                                           d.kind != "invoice"))

    def history(self, slug: str) -> list[Document]:
        return [d for d in self.documents() if d.bill.municipality == slug]

    def open_invoice(self, slug: str) -> Document | None:
        """The municipality's invoice of the month that no credit note cancels, if any."""
        credited = {d.credits[0] for d in self.history(slug) if d.credits}
        open_ = [d for d in self.history(slug) if d.kind == "invoice"
                 and d.number not in credited]
        return open_[-1] if open_ else None

    def next_number(self, code: str, slug: str) -> str:
        invoices = [d for d in self.history(slug) if d.kind == "invoice"]
        return f"{self.folder.name.replace('-', '')}-{code}-{len(invoices) + 1}"

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the month for one run: a second run waits, then sees what the first kept."""
        with files.locked(self.folder / ".lock"):
            yield

    def keep(self, docs: list[Document], xml: dict[str, bytes]) -> list[Path]:
        """Write each document (XML, then its record), then the month's ledger."""
        self.folder.mkdir(parents=True, exist_ok=True)
        written = []
        for doc in docs:
            path = self.folder / f"{doc.number}.xml"
            _write(path, xml[doc.number])
            _write(path.with_suffix(".json"), json.dumps(record(doc), indent=2,
                                                         ensure_ascii=False).encode() + b"\n")
            written.append(path)
        _write(self.ledger, ledger_csv(self.documents()).encode())
        return written

    @property
    def ledger(self) -> Path:
        return self.folder / "ledger.csv"


def kept_months(root: Path, env: str) -> list[Month]:
    """Every month kept for ``env`` under ``root``, newest first."""
    folder = root / env
    if not folder.is_dir():
        return []
    return [Month(p) for p in sorted(folder.iterdir(), reverse=True)
            if p.is_dir() and _MONTH.match(p.name)]


def last_invoice(root: Path, env: str, slug: str) -> Document | None:
    """The municipality's newest kept invoice that no credit note cancels, if any: what the
    report explains today's amounts against."""
    for month in kept_months(root, env):
        found = month.open_invoice(slug)
        if found is not None:
            return found
    return None


def _sequence(number: str) -> int:
    return int(number.rsplit("-", 1)[1])


def _write(path: Path, data: bytes) -> None:
    files.write_atomic(path, data)


def ledger_csv(docs: list[Document]) -> str:
    """Every line of every document, one row each; a credit note's amounts are negative."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(LEDGER_COLUMNS)
    for doc in docs:
        sign = -1 if doc.kind == "credit_note" else 1
        for i, line in enumerate(doc.bill.lines, start=1):
            writer.writerow([
                doc.number, doc.kind, doc.issue_date.isoformat(),
                doc.due_date.isoformat() if doc.due_date else "", doc.period[0].isoformat(),
                doc.period[1].isoformat(), doc.bill.municipality, doc.buyer.organisation_number,
                doc.buyer_reference, i, line.service, line.tier, line.area or "sites",
                sign * line.quantity, f"{line.unit_price:.2f}", f"{sign * line.amount:.2f}",
                str(line.vat_rate)])
    return buf.getvalue()


def xml_of(docs: list[Document]) -> dict[str, bytes]:
    return {doc.number: ehf.document_xml(doc) for doc in docs}
