"""The inventory model: the one source of truth for what an inventory file may say.

Every model is strict and forbids unknown keys, so a typo is an error, never a silent default.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,30}[a-z0-9]$")]
SiteId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,20}[a-z0-9]$")]
MunicipalityCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _network(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as e:
        raise ValueError(
            f"not an IPv4 prefix with its host bits clear, like 10.101.1.0/24 ({e})"
        ) from None


SiteKind = Literal["town_hall", "school", "care_home", "health_centre", "library", "depot"]


class Site(Strict):
    id: SiteId
    name: str
    kind: SiteKind
    lan_prefix: str = Field(description="The site LAN, e.g. 10.101.1.0/24")

    _check_prefix = field_validator("lan_prefix")(_network)

    @property
    def lan(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.lan_prefix)


class Municipality(Strict):
    schema_version: Literal[1]
    code: MunicipalityCode = Field(description="The official municipality number, e.g. '4022'")
    name: str
    slug: Slug = Field(description="Equal to the file name without .yaml")
    sites: list[Site] = Field(min_length=1)


class AddressPlan(Strict):
    aggregates: list[str] = Field(min_length=1, description="Every lab and site prefix lies here")

    @field_validator("aggregates")
    @classmethod
    def _check(cls, value: list[str]) -> list[str]:
        return [_network(v) for v in value]


class OperationsCentre(Strict):
    schema_version: Literal[1]
    name: str
    address_plan: AddressPlan


class Inventory(Strict):
    """Everything the pipeline reads: the centre and every municipality, validated together."""

    centre: OperationsCentre
    municipalities: list[Municipality]

    def municipality(self, slug: str) -> Municipality:
        for m in self.municipalities:
            if m.slug == slug:
                return m
        raise KeyError(slug)
