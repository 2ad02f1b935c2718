"""EHF invoices and credit notes: Peppol BIS Billing 3.0, UBL 2.1 XML.

:func:`document_xml` writes a :class:`Document` (what was billed, as :mod:`fellesdrift.billing`
keeps it) as a UBL ``Invoice`` or ``CreditNote``. The amounts are the invoice module's
(:class:`fellesdrift.invoice.Invoice`): every line, the totals and the VAT breakdown come from
there, so the XML says what the report says. The official rules check the result
(:mod:`fellesdrift.peppol`).

The elements follow the order of the UBL 2.1 schemas; the parties are identified by their
Norwegian organisation numbers (ICD 0192), which are also their Peppol addresses.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal

from fellesdrift.report.invoice import Invoice, InvoiceLine

CUSTOMIZATION = "urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0"
PROFILE = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
#: ISO 6523 ICD of the Norwegian organisation number (Enhetsregisteret).
ORGNR_SCHEME = "0192"
CURRENCY = "NOK"
NS = {
    "invoice": "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
    "credit_note": "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
    "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2",
    "cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
}
#: UN/ECE Recommendation 20: a user is a person (IE), a site one unit (C62).
UNIT = {"per_user": "IE", "per_site": "C62"}

Kind = Literal["invoice", "credit_note"]

for _prefix in ("cac", "cbc"):
    ET.register_namespace(_prefix, NS[_prefix])


@dataclass(frozen=True)
class Party:
    name: str
    organisation_number: str
    #: The seller's VAT number, NO<orgnr>MVA; None for the buyer.
    vat_number: str | None = None
    contact_name: str | None = None
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Document:
    """One invoice or credit note as issued: enough to write it again, byte for byte."""

    kind: Kind
    number: str
    issue_date: date
    period: tuple[date, date]
    seller: Party
    buyer: Party
    buyer_reference: str
    bill: Invoice
    #: Invoices: the due date. Credit notes: None.
    due_date: date | None = None
    #: Invoices: the account to pay to, if the centre gives one.
    bank_account: str | None = None
    #: Credit notes: the invoice credited (its number and issue date).
    credits: tuple[str, date] | None = None

    @property
    def month(self) -> str:
        return f"{self.period[0]:%Y-%m}"


def _el(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    prefix, _, name = tag.partition(":")
    child = ET.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
    if text is not None:
        child.text = text
    return child


def _amount(parent: ET.Element, tag: str, value: Decimal) -> None:
    _el(parent, tag, f"{value:.2f}", currencyID=CURRENCY)


def _percent(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def _vat_scheme(parent: ET.Element) -> None:
    _el(_el(parent, "cac:TaxScheme"), "cbc:ID", "VAT")


def _party(parent: ET.Element, tag: str, party: Party) -> None:
    p = _el(_el(parent, tag), "cac:Party")
    _el(p, "cbc:EndpointID", party.organisation_number, schemeID=ORGNR_SCHEME)
    _el(_el(p, "cac:PartyIdentification"), "cbc:ID", party.organisation_number,
        schemeID=ORGNR_SCHEME)
    _el(_el(p, "cac:PartyName"), "cbc:Name", party.name)
    _el(_el(_el(p, "cac:PostalAddress"), "cac:Country"), "cbc:IdentificationCode", "NO")
    if party.vat_number is not None:
        scheme = _el(p, "cac:PartyTaxScheme")
        _el(scheme, "cbc:CompanyID", party.vat_number)
        _vat_scheme(scheme)
        # NO-R-002: a Norwegian seller registered in Foretaksregisteret says so.
        register = _el(p, "cac:PartyTaxScheme")
        _el(register, "cbc:CompanyID", "Foretaksregisteret")
        _el(_el(register, "cac:TaxScheme"), "cbc:ID", "TAX")
    legal = _el(p, "cac:PartyLegalEntity")
    _el(legal, "cbc:RegistrationName", party.name)
    _el(legal, "cbc:CompanyID", party.organisation_number, schemeID=ORGNR_SCHEME)
    if party.contact_name or party.email or party.phone:
        contact = _el(p, "cac:Contact")
        for tag_, value in (("cbc:Name", party.contact_name), ("cbc:Telephone", party.phone),
                            ("cbc:ElectronicMail", party.email)):
            if value:
                _el(contact, tag_, value)


def _line(parent: ET.Element, kind: Kind, number: int, line: InvoiceLine) -> None:
    el = _el(parent, "cac:InvoiceLine" if kind == "invoice" else "cac:CreditNoteLine")
    _el(el, "cbc:ID", str(number))
    _el(el, "cbc:InvoicedQuantity" if kind == "invoice" else "cbc:CreditedQuantity",
        str(line.quantity), unitCode=UNIT[line.billing])
    _amount(el, "cbc:LineExtensionAmount", line.amount)
    item = _el(el, "cac:Item")
    _el(item, "cbc:Description", line.description)
    _el(item, "cbc:Name", line.name)
    _el(_el(item, "cac:SellersItemIdentification"), "cbc:ID",
        f"{line.service}:{line.tier}:{line.area or 'sites'}")
    assert line.vat_rate is not None
    category = _el(item, "cac:ClassifiedTaxCategory")
    _el(category, "cbc:ID", "S" if line.vat_rate > 0 else "Z")
    _el(category, "cbc:Percent", _percent(line.vat_rate))
    _vat_scheme(category)
    _amount(_el(el, "cac:Price"), "cbc:PriceAmount", line.unit_price)


def document_xml(doc: Document) -> bytes:
    """The document as UBL 2.1 XML (UTF-8, with its declaration)."""
    bill = doc.bill
    groups = bill.vat()  # raises InvoiceError when a service has no VAT rate
    invoice = doc.kind == "invoice"
    root = ET.Element(f"{{{NS[doc.kind]}}}{'Invoice' if invoice else 'CreditNote'}")
    _el(root, "cbc:CustomizationID", CUSTOMIZATION)
    _el(root, "cbc:ProfileID", PROFILE)
    _el(root, "cbc:ID", doc.number)
    _el(root, "cbc:IssueDate", doc.issue_date.isoformat())
    if invoice:
        assert doc.due_date is not None
        _el(root, "cbc:DueDate", doc.due_date.isoformat())
        _el(root, "cbc:InvoiceTypeCode", "380")
    else:
        _el(root, "cbc:CreditNoteTypeCode", "381")
        assert doc.credits is not None
        _el(root, "cbc:Note", f"Kreditnota for faktura {doc.credits[0]}")
    _el(root, "cbc:DocumentCurrencyCode", CURRENCY)
    _el(root, "cbc:BuyerReference", doc.buyer_reference)
    period = _el(root, "cac:InvoicePeriod")
    _el(period, "cbc:StartDate", doc.period[0].isoformat())
    _el(period, "cbc:EndDate", doc.period[1].isoformat())
    if doc.credits is not None:
        ref = _el(_el(root, "cac:BillingReference"), "cac:InvoiceDocumentReference")
        _el(ref, "cbc:ID", doc.credits[0])
        _el(ref, "cbc:IssueDate", doc.credits[1].isoformat())
    _party(root, "cac:AccountingSupplierParty", doc.seller)
    _party(root, "cac:AccountingCustomerParty", doc.buyer)
    if invoice and doc.bank_account is not None:
        means = _el(root, "cac:PaymentMeans")
        _el(means, "cbc:PaymentMeansCode", "30", name="Credit transfer")
        _el(means, "cbc:PaymentID", doc.number)
        _el(_el(means, "cac:PayeeFinancialAccount"), "cbc:ID", doc.bank_account)
    if invoice and doc.due_date is not None:
        days = (doc.due_date - doc.issue_date).days
        _el(_el(root, "cac:PaymentTerms"), "cbc:Note", f"{days} dagar netto")
    tax = _el(root, "cac:TaxTotal")
    _amount(tax, "cbc:TaxAmount", bill.vat_total)
    for g in groups:
        sub = _el(tax, "cac:TaxSubtotal")
        _amount(sub, "cbc:TaxableAmount", g.taxable)
        _amount(sub, "cbc:TaxAmount", g.tax)
        category = _el(sub, "cac:TaxCategory")
        _el(category, "cbc:ID", g.category)
        _el(category, "cbc:Percent", _percent(g.rate))
        _vat_scheme(category)
    totals = _el(root, "cac:LegalMonetaryTotal")
    _amount(totals, "cbc:LineExtensionAmount", bill.total)
    _amount(totals, "cbc:TaxExclusiveAmount", bill.total)
    _amount(totals, "cbc:TaxInclusiveAmount", bill.total_with_vat)
    _amount(totals, "cbc:PayableAmount", bill.total_with_vat)
    for i, line in enumerate(bill.lines, start=1):
        _line(root, doc.kind, i, line)
    ET.indent(root)
    # The document's own namespace is the default one (ElementTree keeps one default at a time).
    ET.register_namespace("", NS[doc.kind])
    data: bytes = ET.tostring(root, encoding="UTF-8", xml_declaration=True)
    return data + b"\n"
