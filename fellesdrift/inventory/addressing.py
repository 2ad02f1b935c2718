"""IPv4 prefixes as integers: parsing, overlap detection over many owners, free-space allocation.

The standard library's ``ipaddress`` is exact but costs microseconds per object; validating ten
thousand sites needs integers. Everything here agrees with ``ipaddress`` (a unit test checks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

T = TypeVar("T")


_DOTTED = re.compile(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\Z")


def parse_address(text: str) -> int:
    """The integer of a dotted-quad IPv4 address; ValueError says what is wrong."""
    m = _DOTTED.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not four numbers from 0 to 255 separated by dots")
    value = 0
    for part in m.groups():
        if len(part) > 1 and part[0] == "0":
            raise ValueError(f"{part!r} has a leading zero (ambiguous: octal or decimal?)")
        octet = int(part)
        if octet > 255:
            raise ValueError(f"{octet} is more than 255")
        value = value << 8 | octet
    return value


@lru_cache(maxsize=1 << 16)
def parse_prefix(text: str) -> tuple[int, int]:
    """(network, length) of ``a.b.c.d/n`` with its host bits clear; ValueError says what is
    wrong. Cached: the model and the cross-file rules both ask."""
    address, slash, length_text = text.partition("/")
    if not slash:
        raise ValueError(f"{text} has no /length")
    network = parse_address(address)
    if not (length_text.isascii() and length_text.isdigit()) or int(length_text) > 32 \
            or (len(length_text) > 1 and length_text[0] == "0"):
        raise ValueError(f"/{length_text} is not a prefix length from 0 to 32")
    length = int(length_text)
    host_bits = (1 << (32 - length)) - 1
    if network & host_bits:
        clear = format_prefix(network & ~host_bits & 0xFFFFFFFF, length)
        raise ValueError(f"{text} has host bits set; the prefix is {clear}")
    return network, length


def format_address(value: int) -> str:
    return ".".join(str(value >> shift & 255) for shift in (24, 16, 8, 0))


def format_prefix(network: int, length: int) -> str:
    return f"{format_address(network)}/{length}"


@dataclass(frozen=True)
class Span(Generic[T]):
    """An inclusive range of addresses and who holds it."""

    first: int
    last: int
    owner: T

    @classmethod
    def of(cls, prefix: str, owner: T) -> Span[T]:
        network, length = parse_prefix(prefix)
        return cls(network, network + (1 << (32 - length)) - 1, owner)

    def within(self, other: Span[Any]) -> bool:
        return other.first <= self.first and self.last <= other.last


def overlaps(spans: Iterable[Span[T]]) -> Iterator[tuple[Span[T], Span[T]]]:
    """Pairs (earlier, later) of overlapping spans, in one sort and one sweep.

    Spans are ordered by first address, wider first, then by the order given; each span that
    overlaps one before it is reported once, against the widest-reaching span before it. Every
    span that overlaps any other appears in at least one pair.
    """
    ordered = sorted(enumerate(spans), key=lambda p: (p[1].first, -p[1].last, p[0]))
    reach: Span[T] | None = None
    for _, span in ordered:
        if reach is not None and span.first <= reach.last:
            yield reach, span
        if reach is None or span.last > reach.last:
            reach = span


def free_prefixes(within: Iterable[str], used: Iterable[str], length: int) -> Iterator[str]:
    """Every prefix of ``length`` inside ``within`` that overlaps nothing in ``used``, lowest
    first (a generator: take as many as needed)."""
    taken = [(s.first, s.last) for s in (Span.of(p, None) for p in used)]
    size = 1 << (32 - length)
    for first, last in sorted((s.first, s.last) for s in (Span.of(p, None) for p in within)):
        candidate = first  # an aggregate at least this large is aligned to this size
        while candidate + size - 1 <= last:
            end = candidate + size - 1
            clash = max((t_last for t_first, t_last in taken
                         if t_first <= end and t_last >= candidate), default=None)
            if clash is None:
                yield format_prefix(candidate, length)
                taken.append((candidate, end))
                candidate += size
            else:
                candidate = (clash // size + 1) * size
