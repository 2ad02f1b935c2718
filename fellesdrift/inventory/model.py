"""The inventory model: the one source of truth for what an inventory file may say.

Two kinds of file, both ``schema_version: 2``:

- ``inventories/operations-centre.yaml`` — :class:`OperationsCentre`: the address plan, the
  service catalogue (service levels, services with monthly prices), the broadband providers whose
  links meet the centre, the centre's shared hosts and the replacement price per device model.
- ``inventories/<slug>.yaml`` — :class:`Municipality`: one municipality, its contacts, the services
  it subscribes to, its users per service area and its sites.

Every model is strict and forbids unknown keys, so a typo is an error, never a silent default.
Field descriptions and examples are written for the person editing the file: they appear in the
generated JSON Schema (editor hover and completion) and in the loader's error messages ("what
would be right"). Rules that relate several fields or files live in :mod:`fellesdrift.rules`.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError
from stdnum import exceptions as stdnum_errors
from stdnum.no import kontonr, orgnr

from fellesdrift.inventory.addressing import parse_address, parse_prefix
from fellesdrift.syntax import UNREPRESENTABLE

#: The schema version this code reads and writes. Older files are upgraded by
#: ``fellesdrift inventory migrate`` (see :mod:`fellesdrift.migrate`).
SCHEMA_VERSION = 2

# --- Scalar types -----------------------------------------------------------------------------

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$"), Field(
    description="Lower-case ASCII letters, digits and hyphens (3–32), e.g. kragero for Kragerø",
    examples=["seljord"])]
Id = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$"), Field(
    description="An identifier: lower-case ASCII letters, digits and hyphens (2–32)",
    examples=["standard"])]
SiteId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,20}[a-z0-9]$"), Field(
    description="Lower-case ASCII letters, digits and hyphens (2–22); unique in the "
    "municipality and part of host names (<slug>-<id>)", examples=["radhus"])]
Hostname = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,61}[a-z0-9]$"), Field(
    description="A host name: lower-case letters, digits and hyphens", examples=["apt-proxy"])]
MunicipalityCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$"), Field(
    description='The official four-digit municipality number, in quotes, e.g. "4022"',
    examples=["4022"])]

#: Every character ``str.splitlines()`` ends a line at: a router's config parser, Ansible and
#: most line-based formats split there, so none of them may be inside a value.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
#: Unicode categories no free text needs: controls, format characters (bidi overrides,
#: zero-width), surrogates, private use, unassigned, line and paragraph separators.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
#: Jinja's (and so Ansible's) markers; no name, address or description needs them.
TEMPLATE_MARKERS = re.compile(r"\{[{%#]|[}%#]\}")
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The longest free text, in characters (a router description holds about 240).
TEXT_MAX_LENGTH = 200


#: Names of the control characters unicodedata has none for.
_CONTROL_NAMES = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN",
                  "\v": "LINE TABULATION", "\f": "FORM FEED", "\x00": "NULL",
                  "\x1b": "ESCAPE", "\x1c": "FILE SEPARATOR", "\x1d": "GROUP SEPARATOR",
                  "\x1e": "RECORD SEPARATOR", "\x7f": "DELETE", "\x85": "NEXT LINE"}


def _character(c: str) -> str:
    name = unicodedata.name(c, "") or _CONTROL_NAMES.get(c, "")
    return f"U+{ord(c):04X}" + (f" ({name})" if name else "")


def text_problem(value: str) -> tuple[str, str] | None:
    """(rule, what is wrong) for free text that no destination can hold safely, else None."""
    # isprintable() is False for every refused category (and for spaces other than ' ', which
    # are fine): the loop runs only for text that may hold something refused.
    for i, c in enumerate("" if value.isprintable() else value):
        if c in LINE_BREAKS:
            return ("text-line-break", f"holds a line break, {_character(c)}, at character "
                    f"{i + 1}; write it on one line")
        if (c.isascii() and _ASCII_CONTROL.match(c)) or (
                not c.isascii() and unicodedata.category(c) in REFUSED_CATEGORIES):
            return ("text-control", f"holds the invisible or control character {_character(c)} "
                    f"at character {i + 1}; remove it (letters, digits, spaces and punctuation "
                    "are fine)")
    marker = TEMPLATE_MARKERS.search(value)
    if marker is not None:
        return ("text-template", f"holds the template marker {marker.group()!r} at character "
                f"{marker.start() + 1}; no name or description needs one (write the braces "
                "apart, or leave them out)")
    return None


def _text(value: str) -> str:
    found = text_problem(value)
    if found is not None:
        raise PydanticCustomError(found[0], found[1])
    return value


#: Free text: names, addresses, descriptions. One line of printable characters (quotes,
#: backslashes, #, ;, <, & and non-ASCII letters are fine: each destination escapes them).
Text = Annotated[str, StringConstraints(min_length=1, max_length=TEXT_MAX_LENGTH,
                                        strip_whitespace=False), AfterValidator(_text)]

#: Printable characters a router's CLI cannot take in free text in any quoting (it answers '?'
#: with help): the destinations' own list, :data:`fellesdrift.syntax.UNREPRESENTABLE`.
ROUTER_TEXT_REFUSED = "".join(sorted({c for destination, chars, _ in UNREPRESENTABLE
                                      if destination in ("frr_text", "ios_text")
                                      for c in chars}))


def _router_text(value: str) -> str:
    for c in ROUTER_TEXT_REFUSED:
        if c in value:
            raise PydanticCustomError(
                "text-router", "holds '{char}' at character {at}, which a router's command line "
                "answers with help instead of taking it (the site's name describes its LAN on "
                "its router); write it without", {"char": c, "at": value.index(c) + 1})
    return value


#: Free text that also goes into router configurations (interface descriptions).
RouterText = Annotated[Text, AfterValidator(_router_text)]
Email = Annotated[str, StringConstraints(
    pattern=r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$"), Field(
    description="An e-mail address", examples=["postmottak@seljord.kommune.no"])]
Phone = Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 ]{6,18}[0-9]$"), Field(
    description='A phone number in quotes, e.g. "+47 35 06 51 00"', examples=["+47 35 06 51 00"])]
Serial = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{3,39}$"), Field(
    description="The device's serial number as printed on it, in quotes if it is all digits",
    examples=["FGL2231A0BC"])]


def _registered_number(what: str, module: Any, digits: int, rule: str, source: str) -> Any:
    """A validator of a Norwegian number with a mod-11 check digit (python-stdnum's check)."""

    def check(value: str) -> str:
        try:
            return str(module.validate(value))
        except stdnum_errors.InvalidLength:
            problem = f"has {len(module.compact(value))} digits; {what} has {digits}"
        except stdnum_errors.InvalidChecksum:
            problem = "fails the mod-11 check of its last digit: a digit is wrong or swapped"
        except stdnum_errors.ValidationError:
            problem = f"is not {digits} digits"
        raise PydanticCustomError(rule, "{value} {problem}; copy it from {source}, in quotes",
                                  {"value": repr(value), "problem": problem, "source": source})
    return AfterValidator(check)


OrganisationNumber = Annotated[str, _registered_number(
    "an organisation number", orgnr, 9, "organisation-number",
    "Enhetsregisteret (brreg.no)"), Field(
    description='The organisation number in Enhetsregisteret: 9 digits with a mod-11 check '
    'digit, in quotes, e.g. "974760673"', examples=["974760673"],
    json_schema_extra={"pattern": "^[0-9]{3} ?[0-9]{3} ?[0-9]{3}$"})]
BankAccount = Annotated[str, _registered_number(
    "a Norwegian bank account number", kontonr, 11, "bank-account", "the bank's agreement"),
    Field(
    description='A Norwegian bank account number: 11 digits with a mod-11 check digit, in '
    'quotes, e.g. "1503.47.25613"', examples=["15034725613"],
    json_schema_extra={"pattern": "^[0-9]{4}[. ]?[0-9]{2}[. ]?[0-9]{5}$"})]

_PREFIX_SHAPE = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$"
_ADDRESS_SHAPE = r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"


def _prefix(value: str) -> str:
    try:
        parse_prefix(value)
    except ValueError as e:
        raise PydanticCustomError(
            "format", "{reason}; expected an IPv4 prefix with its host bits clear, like "
            "10.101.1.0/24", {"reason": str(e)}) from None
    return value


def _address(value: str) -> str:
    try:
        parse_address(value)
    except ValueError as e:
        raise PydanticCustomError("format", "{reason}; expected an IPv4 address, like 10.100.1.10",
                                  {"reason": str(e)}) from None
    return value


def _site_prefix(value: str) -> str:
    length = int(value.partition("/")[2])
    if not 16 <= length <= 28:
        raise PydanticCustomError(
            "prefix-size", "a site LAN is a /16 to /28 (the client host takes the 10th "
            "address), not a /{length}", {"length": length})
    return value


Prefix = Annotated[str, StringConstraints(pattern=_PREFIX_SHAPE), AfterValidator(_prefix), Field(
    description="An IPv4 prefix with its host bits clear", examples=["10.101.1.0/24"])]
Address = Annotated[str, StringConstraints(pattern=_ADDRESS_SHAPE), AfterValidator(_address),
                    Field(description="An IPv4 address", examples=["10.100.1.10"])]

_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _date_from_text(value: Any) -> Any:
    """Accept a quoted ISO date too: editors read YAML 1.2, where 2024-05-10 is text."""
    if isinstance(value, str) and _ISO_DATE.match(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


Date = Annotated[date, BeforeValidator(_date_from_text), Field(
    description="A date, YYYY-MM-DD", examples=["2024-05-10"])]


def _price(value: Any) -> Any:
    return Decimal(value) if isinstance(value, int) and not isinstance(value, bool) else value


Price = Annotated[Decimal, BeforeValidator(_price),
                  Field(ge=0, le=100_000, decimal_places=2),
                  WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100_000}),
                  Field(description="Monthly price in NOK excluding VAT, at most two decimals",
                        examples=[95.5])]
Percent = Annotated[Decimal, BeforeValidator(_price), Field(ge=50, le=100, decimal_places=3),
                    WithJsonSchema({"type": "number", "minimum": 50, "maximum": 100})]
#: What replacing one network device costs, once: NOK excluding VAT.
ReplacementPrice = Annotated[Decimal, BeforeValidator(_price),
                             Field(ge=0, le=10_000_000, decimal_places=2),
                             WithJsonSchema({"type": "number", "minimum": 0,
                                             "maximum": 10_000_000}),
                             Field(description="What replacing one device of this model costs, "
                                   "once, in NOK excluding VAT, at most two decimals",
                                   examples=[18500])]
VatRate = Annotated[Decimal, BeforeValidator(_price), Field(ge=0, le=100, decimal_places=2),
                    WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100}),
                    Field(description="VAT (MVA) in percent: 25 for most services, 0 for none",
                          examples=[25])]


SitePrefix = Annotated[Prefix, AfterValidator(_site_prefix)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


# --- Municipality -----------------------------------------------------------------------------

SiteKind = Literal["town_hall", "school", "kindergarten", "care_home", "health_centre", "library",
                   "depot", "fire_station", "culture_house", "office"]
ServiceArea = Literal["administration", "education", "health_care", "technical", "culture"]
Access = Literal["fibre", "radio", "dsl"]
#: Network device platforms, as netmiko's device_type names them (a unit test checks each one
#: against netmiko). The lab's FRR routers answer netmiko's cisco_ios driver.
Platform = Literal["cisco_ios", "cisco_xe", "juniper_junos", "mikrotik_routeros", "fortinet",
                   "hp_procurve", "aruba_aoscx", "linux"]
ContactRole = Literal["it", "invoice", "management", "privacy"]


class Contact(Strict):
    name: Text = Field(description="A person or a function, e.g. IT-ansvarleg or Postmottak")
    role: ContactRole = Field(description="What to contact them about: it (operations and "
                              "incidents), invoice, management (agreements), privacy (the data "
                              "protection officer)")
    email: Email
    phone: Phone | None = None


class Subscription(Strict):
    service: Id = Field(description="A service id from the centre's catalogue "
                        "(operations-centre.yaml, services)", examples=["gis"])
    tier: Id = Field(description="A service level the service is priced at in the catalogue",
                     examples=["standard"])


class UsersPerArea(Strict):
    """People using the shared services, per service area; invoicing counts them."""

    administration: int = Field(0, ge=0, le=100_000, description="Administration and staff")
    education: int = Field(0, ge=0, le=100_000, description="Schools and kindergartens")
    health_care: int = Field(0, ge=0, le=100_000, description="Health and care")
    technical: int = Field(0, ge=0, le=100_000, description="Technical services, roads, water")
    culture: int = Field(0, ge=0, le=100_000, description="Culture, libraries, sports")

    def total(self, areas: list[str] | None = None) -> int:
        names = areas if areas is not None else list(type(self).model_fields)
        return sum(int(getattr(self, a)) for a in names)


class BroadbandLink(Strict):
    access: Access = Field(description="How the building is connected: fibre, radio or dsl")
    provider: Id = Field(description="A provider id from the centre's providers; its links "
                         "share one handoff into the centre", examples=["vtk"])
    down_mbps: int = Field(ge=1, le=100_000, description="Bandwidth towards the site, Mbit/s",
                           examples=[1000])
    up_mbps: int = Field(ge=1, le=100_000, description="Bandwidth from the site, Mbit/s",
                         examples=[1000])
    vlan: int = Field(ge=2, le=4094, description="The VLAN the provider delivers this site on at "
                      "the centre; unique among the provider's links", examples=[101])


class NetworkDevice(Strict):
    platform: Platform = Field(description="netmiko device_type of the site router",
                               examples=["cisco_ios"])
    model: Text = Field(description="Vendor model", examples=["C1111-4P"])
    serial: Serial
    installed: Date = Field(description="The date the device was installed, YYYY-MM-DD")
    lease_end: Date = Field(description="The date the device's lease or support ends, YYYY-MM-DD")


class Site(Strict):
    """A municipal building with its own LAN, broadband link and router."""

    id: SiteId
    name: RouterText = Field(description="The building's name (also its LAN's description on "
                             "its router, so without '?')", examples=["Seljord rådhus"])
    kind: SiteKind = Field(description="What the building is")
    address: Text = Field(description="Street address, postcode and place",
                          examples=["Brøløsvegen 13, 3840 Seljord"])
    users: int = Field(ge=0, le=100_000, description="People working at the site")
    lan_prefix: SitePrefix = Field(description="The site LAN, a /16–/28 inside the centre's "
                                   "address plan; the site client host takes its 10th address",
                                   examples=["10.101.1.0/24"])
    link: BroadbandLink = Field(description="The site's broadband link to the centre")
    device: NetworkDevice | None = Field(None, description="The site router; leave it out until "
                                         "one is installed")

    @cached_property
    def lan(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.lan_prefix)


class Municipality(Strict):
    """One municipality: the file ``inventories/<slug>.yaml``."""

    schema_version: Literal[2] = Field(description="The inventory schema version of this file")
    code: MunicipalityCode
    name: Text = Field(description="The municipality's name", examples=["Seljord"])
    slug: Slug = Field(description="Equal to the file name without .yaml; ASCII only")
    contacts: list[Contact] = Field(min_length=1, description="Who the centre talks to")
    organisation_number: OrganisationNumber | None = Field(
        None, description="The municipality's organisation number, 9 digits in quotes: the "
        "buyer on its invoices and its Peppol address (needed by `fellesdrift invoice`)")
    buyer_reference: Text | None = Field(
        None, description="The reference the municipality asks its invoices to carry so they "
        "reach the right budget (EHF BuyerReference; needed by `fellesdrift invoice`)",
        examples=["4036-IKT-drift"])
    services: list[Subscription] = Field(description="Services subscribed to, each at one tier")
    users: UsersPerArea = Field(description="Users per service area, for invoicing")
    sites: list[Site] = Field(min_length=1, description="The municipality's buildings")


# --- Operations centre ------------------------------------------------------------------------


class CentreRange(Strict):
    name: Id = Field(description="What the range is for", examples=["servers"])
    prefix: Prefix


#: Private 32-bit AS numbers (RFC 6996): 4200000000 to 4294967294.
PRIVATE_ASN_32 = (4_200_000_000, 4_294_967_294)


class Routing(Strict):
    """How the core router and the site routers exchange routes."""

    protocol: Literal["bgp", "static"] = Field(
        "bgp", description="bgp: eBGP between the core and each site router, filtered both ways "
        "(the core offers the shared services only and accepts only the municipality's own site "
        "LANs); static: static routes both ways, the fallback for routers without BGP")
    asn: int = Field(65000, ge=1, le=4_294_967_294, description="The core router's AS number",
                     examples=[65000])
    site_asn_base: int = Field(
        4_200_000_000, ge=PRIVATE_ASN_32[0], le=PRIVATE_ASN_32[1] - 9999,
        description="Site routers take a private AS per municipality: this base plus the "
        "municipality's four-digit code (4200004036 for code 4036)", examples=[4_200_000_000])

    def site_asn(self, code: str) -> int:
        return self.site_asn_base + int(code)


class AddressPlan(Strict):
    aggregates: list[Prefix] = Field(min_length=1, description="Every site prefix and centre "
                                     "range lies in these; a lab routes them as unreachable")
    centre_ranges: list[CentreRange] = Field(default_factory=list, description="The centre's own "
                                             "networks; no site prefix may overlap them")
    site_pools: list[Prefix] = Field(default_factory=list, description="Where `fellesdrift new` "
                                     "allocates site LANs, first fit (default: the aggregates)")
    site_prefix_length: int = Field(24, ge=16, le=28, description="The prefix length `fellesdrift "
                                    "new` allocates for a site LAN")
    routing: Routing = Field(Routing.model_validate({}), description="How routes are exchanged "
                             "between the core router and the site routers (default: eBGP, core "
                             "AS 65000)")


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"), Field(
    description='A time on the Oslo clock, HH:MM (24-hour) in quotes, e.g. "22:00"',
    examples=["22:00"])]
ClockEnd = Annotated[str, StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"),
                     Field(description='A time on the Oslo clock, HH:MM (24-hour) in quotes, '
                           'or "24:00" for midnight at the end of the day', examples=["06:00"])]


class MaintenanceWindow(Strict):
    """When the hosts and routers of a municipality at this service level may be changed, on
    the Europe/Oslo wall clock (summer and winter time alike; `fellesdrift.change.windows`)."""

    days: list[Weekday] = Field(min_length=1, description="The days the window opens on, each "
                                "once, e.g. [tuesday, thursday]", examples=[["tuesday"]])
    start: ClockTime = Field(description='When the window opens on each of its days, e.g. '
                             '"22:00"')
    end: ClockEnd = Field(description='When it closes: later than start the same day, else the '
                          'next day ("22:00" to "02:00" crosses midnight; equal to start: 24 '
                          'hours)')


class ServiceLevel(Strict):
    id: Id = Field(description="The service level's id; subscriptions name it as their tier",
                   examples=["standard"])
    name: Text = Field(description="The service level's name", examples=["Standard"])
    support_hours: Text = Field(description='When the service desk answers, e.g. "weekdays '
                                '08-16" or "24/7"')
    response_hours: int = Field(ge=1, le=168, description="Hours to first response to a fault")
    availability_percent: Percent = Field(description="Monthly availability target, percent")
    maintenance_window: MaintenanceWindow | None = Field(
        None, description="When `fellesdrift up` may change the hosts and routers of a "
        "municipality at this level (Europe/Oslo); leave it out for no restriction. A "
        "municipality with several levels is bound by the window of its most demanding one "
        "(highest availability)")


class Service(Strict):
    id: Id = Field(description="The service's id; subscriptions name it", examples=["drift"])
    name: Text = Field(description="The service's name", examples=["Drift og brukarstøtte"])
    billing: Literal["per_user", "per_site"] = Field(
        description="per_user: priced per user in the areas below; per_site: per site")
    areas: list[ServiceArea] | None = Field(None, min_length=1, description="For per_user "
                                            "billing: which service areas' users count, each "
                                            "once (default: all)")
    prices: dict[Id, Price] = Field(min_length=1, description="Monthly price per user or site, "
                                    "for each service level id the service is offered at")
    vat_rate: VatRate | None = Field(None, description="The VAT rate invoices charge on the "
                                     "service, percent (needed by `fellesdrift invoice`)")


class Provider(Strict):
    id: Id = Field(description="The provider's id; site links name it", examples=["vtk"])
    name: Text = Field(description="The provider's name", examples=["Vest-Telemark Kraftlag"])
    handoff: Text = Field(description="Where the provider's links meet the centre; all of them "
                          "arrive there on one trunk, one VLAN per site")


class SharedHost(Strict):
    hostname: Hostname
    role: Literal["apt_proxy", "gis", "finance", "file", "directory", "monitoring", "backup",
                  "execution_node"] = \
        Field(description="What the host does for the municipalities (execution_node: it "
                          "converges the hosts of the municipalities environments.yaml gives "
                          "it, with the locked Ansible)")
    address: Address = Field(description="Inside one of the centre's ranges")


class OperationsCentre(Strict):
    """The centre: the file ``inventories/operations-centre.yaml``."""

    schema_version: Literal[2] = Field(description="The inventory schema version of this file")
    name: Text = Field(description="The centre's name", examples=["Telemark IKT-driftssenter"])
    organisation_number: OrganisationNumber | None = Field(
        None, description="The centre's organisation number, 9 digits in quotes: the seller on "
        "every invoice; its VAT number is NO<number>MVA (needed by `fellesdrift invoice`)")
    payment_terms_days: int | None = Field(None, ge=1, le=120, description="Days from an "
                                           "invoice's issue date to its due date (needed by "
                                           "`fellesdrift invoice`)", examples=[30])
    bank_account: BankAccount | None = Field(None, description="The account invoices are paid "
                                             "to (optional on an invoice)")
    address_plan: AddressPlan
    service_levels: list[ServiceLevel] = Field(min_length=1, description="The service levels "
                                               "(tiers) services are offered at")
    services: list[Service] = Field(min_length=1, description="The service catalogue")
    providers: list[Provider] = Field(min_length=1, description="Broadband providers")
    shared_hosts: list[SharedHost] = Field(default_factory=list, description="Hosts of the "
                                           "centre that every municipality uses")
    equipment_prices: dict[Text, ReplacementPrice] = Field(
        default_factory=dict, description="What replacing a site's network device costs, per "
        "vendor model as the sites' devices name it (device.model). The report's 36-month "
        "forecast adds a device whose lease ends in the period at this price; a model without "
        "one is listed there as unpriced", examples=[{"C1111-4P": 18500}])

    @property
    def vat_number(self) -> str | None:
        """The centre's VAT number (MVA-nummer), from its organisation number."""
        return f"NO{self.organisation_number}MVA" if self.organisation_number else None


# --- Everything -------------------------------------------------------------------------------


class Inventory(Strict):
    """Everything the pipeline reads: the centre and every municipality, validated together."""

    centre: OperationsCentre
    municipalities: list[Municipality]

    def municipality(self, slug: str) -> Municipality:
        for m in self.municipalities:
            if m.slug == slug:
                return m
        raise KeyError(slug)
