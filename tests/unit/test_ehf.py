"""EHF invoices checked with the UBL 2.1 XML Schema and the official rules (EN 16931 UBL and
Peppol BIS Billing 3.0).

The rules are OpenPeppol's own Schematron, compiled to XSLT, from phive's jar on Maven Central
(fetched once, pinned by SHA-256), run by Saxon. Any fatal finding fails; the samples' warnings
are listed in SAMPLE_WARNINGS (none today) and in docs/invoicing.md.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
import typer
from pydantic import TypeAdapter, ValidationError
from typer.testing import CliRunner

from fellesdrift.cli import invoice as invoice_cmd
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import OrganisationNumber
from fellesdrift.report import billing, ehf, peppol, ubl
from fellesdrift.report.billing import Month
from fellesdrift.report.ehf import NS, Party
from fellesdrift.report.invoice import invoice

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = inventory.load([ROOT / "inventories"])
FIXTURES = ROOT / "tests" / "fixtures" / "inventories"
ISSUED = date(2026, 12, 1)
#: Warnings the official rules give on the samples' invoices, by municipality: none.
SAMPLE_WARNINGS: dict[str, list[str]] = {}


@pytest.fixture(scope="module")
def rules() -> peppol.Validator:
    return peppol.Validator(peppol.fetch())


def sample(slug: str, month: str = "2026-12") -> ehf.Document:
    m = SAMPLES.municipality(slug)
    return billing.document(SAMPLES.centre, m, month, f"202612-{m.code}-1", ISSUED)


def text(xml: bytes, path: str) -> list[str]:
    root = ET.fromstring(xml)
    return [el.text or "" for el in root.findall(path, NS)]


@pytest.mark.parametrize("slug", [m.slug for m in SAMPLES.municipalities])
def test_every_sample_invoice_passes_the_official_rules(
        rules: peppol.Validator, slug: str) -> None:
    found = rules.check(ehf.document_xml(sample(slug)))
    for f in found:
        print(f"{slug}: {f}")  # every warning, in the test output
    assert peppol.fatal(found) == []
    assert [f.rule for f in found] == SAMPLE_WARNINGS.get(slug, [])


def test_the_invoice_carries_the_figures_of_the_one_computation() -> None:
    doc = sample("vinje")
    xml = ehf.document_xml(doc)
    bill = invoice(SAMPLES.centre, SAMPLES.municipality("vinje"))
    assert text(xml, "cbc:ID") == ["202612-4036-1"]
    assert text(xml, "cbc:InvoiceTypeCode") == ["380"]
    assert text(xml, "cbc:BuyerReference") == ["4036-IKT"]
    assert text(xml, "cbc:DueDate") == ["2026-12-31"]  # payment_terms_days: 30
    assert text(xml, "cac:InvoicePeriod/cbc:StartDate") == ["2026-12-01"]
    assert text(xml, "cac:InvoicePeriod/cbc:EndDate") == ["2026-12-31"]
    seller = "cac:AccountingSupplierParty/cac:Party/"
    assert text(xml, seller + "cbc:EndpointID") == ["990012342"]
    assert text(xml, seller + "cac:PartyTaxScheme/cbc:CompanyID") == [
        "NO990012342MVA", "Foretaksregisteret"]
    buyer = "cac:AccountingCustomerParty/cac:Party/"
    assert text(xml, buyer + "cbc:EndpointID") == ["991512349"]
    assert text(xml, buyer + "cac:PartyLegalEntity/cbc:RegistrationName") == ["Vinje kommune"]
    assert text(xml, buyer + "cac:Contact/cbc:ElectronicMail") == ["postmottak@vinje.kommune.no"]
    # The totals and the VAT breakdown: 128 050.00 + 25 % VAT (by hand in test_invoice.py).
    assert text(xml, "cac:LegalMonetaryTotal/cbc:LineExtensionAmount") == ["128050.00"]
    assert text(xml, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ["160062.50"]
    assert text(xml, "cac:TaxTotal/cbc:TaxAmount") == ["32012.50"]
    assert text(xml, "cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:Percent") == ["25"]
    assert text(xml, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID") == ["15034725613"]
    # One line per service and service area, with the tier in its description.
    lines = ET.fromstring(xml).findall("cac:InvoiceLine", NS)
    assert len(lines) == len(bill.lines) == 11  # drift 5 areas, økonomi 1, GIS 2, sak 2, sites
    got = [(ln.findtext("cac:Item/cbc:Description", namespaces=NS),
            ln.findtext("cbc:InvoicedQuantity", namespaces=NS),
            ln.findtext("cac:Price/cbc:PriceAmount", namespaces=NS),
            ln.findtext("cbc:LineExtensionAmount", namespaces=NS)) for ln in lines]
    assert got[0] == ("Standard: 110 users in administration", "110", "130.00", "14300.00")
    assert ("Pluss: 110 users in administration", "110", "260.00", "28600.00") in got
    assert got[-1] == ("Standard: 2 sites", "2", "1950.00", "3900.00")
    assert sum(Decimal(amount) for *_, amount in got) == bill.total == Decimal("128050.00")


def _drop(xml: bytes, tag: str) -> bytes:
    return re.sub(rb"\s*<cbc:%s>[^<]*</cbc:%s>" % (tag.encode(), tag.encode()), b"", xml)


def _wrong_vat(xml: bytes) -> bytes:
    subtotal = b'<cbc:TaxableAmount currencyID="NOK">128050.00</cbc:TaxableAmount>'
    at = xml.index(subtotal) + len(subtotal)
    return xml[:at] + xml[at:].replace(b">32012.50<", b">32000.00<", 1)


def _wrong_total(xml: bytes) -> bytes:
    return xml.replace(b'<cbc:PayableAmount currencyID="NOK">160062.50<',
                       b'<cbc:PayableAmount currencyID="NOK">160062.40<').replace(
        b'<cbc:TaxInclusiveAmount currencyID="NOK">160062.50<',
        b'<cbc:TaxInclusiveAmount currencyID="NOK">160062.40<')


def _wrong_line_sum(xml: bytes) -> bytes:
    return xml.replace(b'<cbc:LineExtensionAmount currencyID="NOK">128050.00<',
                       b'<cbc:LineExtensionAmount currencyID="NOK">128000.00<', 1)


@pytest.mark.parametrize(("break_it", "rule"), [
    (_wrong_total, "BR-CO-15"),          # total with VAT ≠ total without VAT + VAT
    (_wrong_line_sum, "BR-CO-10"),       # sum of the lines ≠ the invoice's line total
    (lambda x: _drop(x, "BuyerReference"), "PEPPOL-EN16931-R003"),
    (_wrong_vat, "BR-S-09"),             # VAT of the 25 % group ≠ its taxable amount × 25 %
], ids=["wrong-total", "wrong-line-sum", "no-buyer-reference", "wrong-vat"])
def test_a_broken_invoice_is_rejected(rules: peppol.Validator, break_it: object,
                                      rule: str) -> None:
    xml = ehf.document_xml(sample("vinje"))
    assert callable(break_it)
    broken = break_it(xml)
    assert broken != xml
    assert rule in {f.rule for f in peppol.fatal(rules.check(broken))}
    assert peppol.fatal(rules.check(xml)) == []


def _issue_date_after_due_date(xml: bytes) -> bytes:
    issue = re.search(rb"\s*<cbc:IssueDate>[^<]*</cbc:IssueDate>", xml)
    due = re.search(rb"\s*<cbc:DueDate>[^<]*</cbc:DueDate>", xml)
    assert issue and due
    return xml.replace(issue.group(), b"", 1).replace(due.group(), due.group() + issue.group(), 1)


def _unknown_element(xml: bytes) -> bytes:
    code = b"<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>"
    return xml.replace(code, code + b"<cbc:Colour>blue</cbc:Colour>", 1)


@pytest.mark.parametrize(("break_it", "message"), [
    (_issue_date_after_due_date, "Element 'cbc:DueDate': This element is not expected. "
                                 "Expected is one of ( cbc:CopyIndicator, cbc:UUID, "
                                 "cbc:IssueDate )"),
    (_unknown_element, "Element 'cbc:Colour': This element is not expected."),
], ids=["elements-out-of-order", "unknown-element"])
def test_the_ubl_schema_rejects_what_the_rules_let_pass(rules: peppol.Validator,
                                                        break_it: object, message: str) -> None:
    """The UBL 2.1 XML Schema (OASIS's XSDs, via ph-ubl21) catches documents the Schematron
    rules do not look at: every finding is the schema's."""
    assert callable(break_it)
    broken = break_it(ehf.document_xml(sample("vinje")))
    found = peppol.fatal(rules.check(broken))
    assert {f.rule for f in found} == {ubl.RULE}
    assert any(message in f.text for f in found), found


def test_the_schema_check_reads_both_kinds_of_document() -> None:
    schema = ubl.Schema()
    doc = sample("vinje")
    assert schema.check(ehf.document_xml(doc)) == []
    assert schema.check(ehf.document_xml(billing.credit_note(doc, ISSUED))) == []
    # A credit note's lines are CreditNoteLine: an invoice's InvoiceLine in one is an error.
    note = ehf.document_xml(billing.credit_note(doc, ISSUED))
    wrong = note.replace(b"<cac:CreditNoteLine>", b"<cac:InvoiceLine>").replace(
        b"</cac:CreditNoteLine>", b"</cac:InvoiceLine>")
    assert any("cac:InvoiceLine" in f.text for f in schema.check(wrong))


def test_the_schema_checks_many_documents_in_one_run_each_on_its_own() -> None:
    good = [ehf.document_xml(sample(slug)) for slug in ("vinje", "tokke", "seljord")]
    broken = _unknown_element(good[1])
    found = ubl.Schema().check_all([good[0], broken, good[2]])
    assert [len(f) for f in found] == [0, 1, 0]
    assert found[1][0].rule == ubl.RULE and "cbc:Colour" in found[1][0].text
    assert found[1][0].location.startswith("line ")
    assert ubl.Schema().check_all([]) == []


def test_the_schemas_are_fetched_once_from_pinned_jars(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jars = []
    for i, members in enumerate(({"external/schemas/ubl21/maindoc/UBL-Invoice-2.1.xsd": "i",
                                  "external/schemas/ubl21/common/UBL-A-2.1.xsd": "a",
                                  "external/schemas/ubl21/README.txt": "r"},
                                 {"schemas/CCTS_CCT_SchemaModule.xsd": "c"})):
        jar = tmp_path / f"{i}.jar"
        with zipfile.ZipFile(jar, "w") as z:
            for name, body in members.items():
                z.writestr(name, body)
        jars.append(jar)
    pinned = [(jars[0].as_uri(), hashlib.sha256(jars[0].read_bytes()).hexdigest(),
               {"external/schemas/ubl21/": ""}),
              (jars[1].as_uri(), "0" * 64,
               {"schemas/CCTS_CCT_SchemaModule.xsd": "CCTS_CCT_SchemaModule.xsd"})]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(ubl, "JARS", tuple(pinned))
    with pytest.raises(peppol.RulesError, match="not the pinned"):
        ubl.fetch()
    assert not ubl.schemas_dir().exists()
    pinned[1] = (pinned[1][0], hashlib.sha256(jars[1].read_bytes()).hexdigest(), pinned[1][2])
    monkeypatch.setattr(ubl, "JARS", tuple(pinned))
    folder = ubl.fetch()
    assert folder == ubl.schemas_dir() and folder.is_relative_to(tmp_path / "cache")
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "CCTS_CCT_SchemaModule.xsd", "check.xsd", "common/UBL-A-2.1.xsd",
        "maindoc/UBL-Invoice-2.1.xsd"]
    for jar in jars:
        jar.unlink()  # fetched once: the next call does not download
    assert ubl.fetch() == folder


def test_the_rules_check_organisation_numbers_as_the_model_does(
        rules: peppol.Validator) -> None:
    doc = sample("vinje")
    bad = "991512348"  # vinje's number with a wrong check digit
    with pytest.raises(ValidationError, match="mod-11"):
        TypeAdapter(OrganisationNumber).validate_python(bad)
    broken = replace(doc, buyer=replace(doc.buyer, organisation_number=bad))
    found = peppol.fatal(rules.check(ehf.document_xml(broken)))
    assert "PEPPOL-COMMON-R041" in {f.rule for f in found}


def test_a_credit_note_mirrors_its_invoice_and_passes_the_rules(
        rules: peppol.Validator) -> None:
    original = sample("vinje")
    note = billing.credit_note(original, date(2026, 12, 5))
    xml = ehf.document_xml(note)
    assert ET.fromstring(xml).tag == f"{{{NS['credit_note']}}}CreditNote"
    assert text(xml, "cbc:ID") == ["K202612-4036-1"]
    assert text(xml, "cbc:CreditNoteTypeCode") == ["381"]
    assert text(xml, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID") == [
        "202612-4036-1"]
    assert text(xml, "cac:BillingReference/cac:InvoiceDocumentReference/cbc:IssueDate") == [
        "2026-12-01"]
    assert text(xml, "cac:LegalMonetaryTotal/cbc:PayableAmount") == ["160062.50"]
    assert len(ET.fromstring(xml).findall("cac:CreditNoteLine", NS)) == 11
    assert peppol.fatal(rules.check(xml)) == []
    assert peppol.fatal(rules.check(_drop(xml, "BuyerReference")))  # the rules do read it


# --- The command: keeping, refusing a second invoice, crediting -------------------------------

def run(*args: str) -> tuple[int, str]:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """The command alone, as the CLI registers it."""

    invoice_cmd.register(app)
    result = CliRunner().invoke(app, ["invoice", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


def test_invoice_keep_refuse_credit_and_invoice_again(tmp_path: Path) -> None:
    out = tmp_path / "invoices"
    common = ["--month", "2026-12", "--out", str(out), "--env", "unit", str(FIXTURES)]
    code, output = run(*common, "--date", "2026-12-01", "--json")
    assert code == 0, output
    result = json.loads(output)
    folder = out / "unit" / "2026-12"
    numbers = sorted(d["number"] for d in result["documents"])
    fixtures = inventory.load([FIXTURES])
    codes = {m.slug: m.code for m in fixtures.municipalities}
    assert numbers == sorted(f"202612-{c}-1" for c in codes.values())
    for d in result["documents"]:
        assert Path(d["file"]).is_file() and d["warnings"] == []
        bill = invoice(fixtures.centre, fixtures.municipality(d["municipality"]))
        assert Decimal(d["total"]) == bill.total and Decimal(d["vat"]) == bill.vat_total
    ledger = (folder / "ledger.csv").read_text().splitlines()
    lines = sum(len(invoice(fixtures.centre, m).lines) for m in fixtures.municipalities)
    assert ledger[0].startswith("document,kind,issue_date") and len(ledger) == 1 + lines

    # The same month again: refused, nothing written.
    before = sorted(p.name for p in folder.iterdir())
    code, output = run(*common, "-m", "vinje")
    assert code == 1 and "already invoiced" in output and "--credit" in output
    assert sorted(p.name for p in folder.iterdir()) == before

    # A credit note for it, which the rules pass; then the month can be invoiced again.
    vinje = codes["vinje"]
    code, output = run(*common, "-m", "vinje", "--credit", "--date", "2026-12-03")
    assert code == 0, output
    assert (folder / f"K202612-{vinje}-1.xml").is_file()
    month = Month(folder)
    [note] = [d for d in month.history("vinje") if d.kind == "credit_note"]
    assert note.credits == (f"202612-{vinje}-1", date(2026, 12, 1))
    assert month.open_invoice("vinje") is None
    code, output = run(*common, "-m", "vinje", "--credit")
    assert code == 1 and "no invoice of 2026-12 to credit" in output
    code, output = run(*common, "-m", "vinje", "--date", "2026-12-04")
    assert code == 0 and f"202612-{vinje}-2" in output
    ledger_text = (folder / "ledger.csv").read_text()
    credited = [row for row in ledger_text.splitlines() if row.startswith(f"K202612-{vinje}-1,")]
    assert credited and all(",-" in row for row in credited)
    # The other municipality's invoice is still the first and still open.
    tokke = month.open_invoice("tokke")
    assert tokke is not None and tokke.number == f"202612-{codes['tokke']}-1"


def test_a_municipality_without_invoice_fields_is_refused_naming_its_file(
        tmp_path: Path) -> None:
    folder = tmp_path / "inv"
    shutil.copytree(FIXTURES, folder)
    vinje = folder / "vinje.yaml"
    vinje.write_text("".join(line for line in vinje.read_text().splitlines(keepends=True)
                             if not line.startswith("buyer_reference:")))
    code, output = run("--month", "2026-12", "--out", str(tmp_path / "out"), str(folder))
    assert code == 1
    assert f"{vinje}: invoicing vinje needs buyer_reference" in " ".join(output.split())
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.name != ".lock"]


def test_a_month_is_a_month(tmp_path: Path) -> None:
    code, output = run("--month", "2026-13", "--out", str(tmp_path), str(FIXTURES))
    assert code == 1 and "YYYY-MM" in output
    assert billing.period("2028-02") == (date(2028, 2, 1), date(2028, 2, 29))


def test_the_record_writes_the_same_document_again() -> None:
    doc = sample("porsgrunn")
    again = billing.from_record(json.loads(json.dumps(billing.record(doc))))
    assert again == doc and ehf.document_xml(again) == ehf.document_xml(doc)


def test_the_seller_is_the_centre() -> None:
    doc = sample("seljord")
    assert doc.seller == Party("Telemark IKT-driftssenter", "990012342", "NO990012342MVA")
    assert SAMPLES.centre.vat_number == "NO990012342MVA"


def test_fetch_checks_the_jar_and_extracts_the_two_stylesheets(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jar = tmp_path / "rules.jar"
    with zipfile.ZipFile(jar, "w") as z:
        for name in peppol.STYLESHEETS:
            z.writestr(f"external/schematron/openpeppol/{peppol.RELEASE}/xslt/{name}", name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(peppol, "JAR_URL", jar.as_uri())
    monkeypatch.setattr(peppol, "JAR_SHA256", "0" * 64)
    with pytest.raises(peppol.RulesError, match="not the pinned"):
        peppol.fetch()
    assert not peppol.rules_dir().exists()
    monkeypatch.setattr(peppol, "JAR_SHA256", hashlib.sha256(jar.read_bytes()).hexdigest())
    folder = peppol.fetch()
    assert folder == peppol.rules_dir() and folder.is_relative_to(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == sorted(peppol.STYLESHEETS)
    jar.unlink()  # fetched once: the next call does not download
    assert peppol.fetch() == folder
