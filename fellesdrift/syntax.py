"""Every value that leaves the model, written in the syntax of its destination.

One small filter per destination and kind of value. The router templates (``templates/network``)
and the report (``templates/report``) use them from Python (:data:`FILTERS`); the roles use the
same functions as Ansible filters (``playbooks/filter_plugins/fellesdrift_syntax.py``).

``validate`` refuses, in every free-text field, line breaks of any kind, control and format
characters and Jinja markers; every other printable character is legal, so each filter here
either writes it in its destination's quoting or, where the destination has no way to write
it at all, raises :class:`Unrepresentable` (naming the destination and the character) instead
of writing raw text. The characters that raise are listed in :data:`UNREPRESENTABLE`.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from collections.abc import Callable
from typing import Any

#: Unicode categories no destination gets: controls, format characters, line and paragraph
#: separators, surrogates, private use and unassigned code points (noncharacters included).
_REFUSED_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}

#: Printable characters that some destination cannot write in any quoting: (destination, the
#: characters, why). Values reaching that destination must not hold them (validate's rules).
UNREPRESENTABLE: tuple[tuple[str, str, str], ...] = (
    ("frr_text", "?|", "vtysh's line editor (the netmiko push) answers '?' with help and drops"
                       " it; vtysh reads '| ' as a pipe to an output filter (| include …) and"
                       " cuts the command there"),
    ("ios_text", "?", "the IOS CLI answers '?' with help and drops it from the line"),
    ("pg_hba_token", '"', "pg_hba.conf has no escape for a double quote inside a quoted token"),
    ("nginx_string", "$", "nginx expands $name in strings and has no escape for a literal $"),
)


class Unrepresentable(ValueError):
    """A value its destination has no syntax for (a line break, a control character, or a
    character listed in :data:`UNREPRESENTABLE`)."""

    def __init__(self, destination: str, value: str, char: str, why: str) -> None:
        self.destination, self.value, self.char = destination, value, char
        super().__init__(f"{destination}: {value!r} holds {char!r} (U+{ord(char):04X}), "
                         f"which {why}")


def _refused(char: str) -> bool:
    return unicodedata.category(char) in _REFUSED_CATEGORIES


def one_line(value: Any, destination: str = "text") -> str:
    """``value`` as text that is one line everywhere: no line break of any kind (everything
    :meth:`str.splitlines` splits on), no control or format character."""
    text = str(value)
    for char in text:
        if _refused(char):
            raise Unrepresentable(destination, text, char,
                                  "is a line break or a control/format character")
    return text


def _without(text: str, destination: str, chars: str, why: str) -> str:
    for char in chars:
        if char in text:
            raise Unrepresentable(destination, text, char, why)
    return text


# --- Routers ---------------------------------------------------------------------------------

_WORD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$")


def config_word(value: Any) -> str:
    """A name that stands as one word in a router configuration (hostname, interface,
    prefix-list, route-map, BGP group): letters, digits and ``. _ : / @ -`` only."""
    text = one_line(value, "config_word")
    if not _WORD.match(text):
        bad = next((c for c in text if not re.match(r"[A-Za-z0-9._:/@-]", c)), text[:1] or " ")
        raise Unrepresentable("config_word", text, bad, "is not a letter, digit or . _ : / @ -")
    return text


def _rest_of_line(value: Any, destination: str) -> str:
    """Free text that a CLI takes as the rest of its line (``description LINE...``): one line,
    no '?', runs of spaces as one (the CLI splits the line into words and joins them with
    one space, so this is also what the device prints back)."""
    text = _without(one_line(value, destination), destination, "?",
                    "the CLI's line editor answers with help instead of taking it")
    return re.sub(r" {2,}", " ", text).strip(" ")


def frr_text(value: Any) -> str:
    """Free text as the rest of an FRR (vtysh) line, e.g. after ``description``. vtysh treats
    '!' and '#' as comments only at the start of a line, so nothing here starts a command; a
    '|' has no escape (vtysh cuts a command at '| ' and runs the rest as an output filter)."""
    return _without(_rest_of_line(value, "frr_text"), "frr_text", "|",
                    "is vtysh's pipe to an output filter, which cuts the command there")


def ios_text(value: Any) -> str:
    """Free text as the rest of a Cisco IOS line (``description LINE``, at most 240
    characters there)."""
    return _rest_of_line(value, "ios_text")


def junos_string(value: Any) -> str:
    """A Junos quoted string: ``"..."`` with backslash and double quote escaped."""
    text = one_line(value, "junos_string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- PostgreSQL --------------------------------------------------------------------------------

def pg_hba_token(value: Any) -> str:
    """A pg_hba.conf database or user token, always double-quoted (a quoted token is never a
    keyword such as ``all`` or ``replication``, nor a ``+group`` or ``@file``)."""
    text = _without(one_line(value, "pg_hba_token"), "pg_hba_token", '"',
                    "has no escape inside a quoted pg_hba.conf token")
    if not text:
        raise ValueError("pg_hba_token: an empty token")
    return f'"{text}"'


def pgpass_field(value: Any) -> str:
    """A field of a libpq password file (``host:port:database:user:password``): ``\\`` and
    ``:`` escaped with a backslash."""
    return one_line(value, "pgpass_field").replace("\\", "\\\\").replace(":", "\\:")


def line_comment(value: Any) -> str:
    """Text inside a ``#`` comment that runs to the end of its line (pg_hba.conf, nginx,
    mapfiles, unbound, shell): one line, and never ending in a backslash, which continues a
    pg_hba.conf line onto the next one."""
    text = one_line(value, "line_comment")
    return text + " " if text.endswith("\\") else text


# --- nginx, MapServer, unbound, systemd, YAML ----------------------------------------------

def nginx_string(value: Any) -> str:
    """An nginx double-quoted argument: ``\\`` and ``"`` escaped (nginx reads ``\\t``, ``\\n``
    … inside quotes); a ``$`` has no escape, so it is refused."""
    text = _without(one_line(value, "nginx_string"), "nginx_string", "$",
                    "starts a variable; nginx has no escape for a literal $")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mapfile_string(value: Any) -> str:
    """A MapServer mapfile string: ``"..."`` with ``\\`` and ``"`` escaped (MapServer's lexer
    reads ``\\\\``, ``\\"`` and ``\\'`` inside quotes)."""
    text = one_line(value, "mapfile_string")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def dns_name(value: Any) -> str:
    """A DNS name of letter-digit-hyphen labels (no trailing dot), as unbound's local-zone
    and local-data strings take it: nothing there needs or gets a zone-file escape."""
    text = one_line(value, "dns_name")
    labels = text.split(".")
    if len(text) > 253 or not all(_LABEL.match(label) for label in labels):
        bad = next((c for c in text if not re.match(r"[A-Za-z0-9.-]", c)), "-")
        raise Unrepresentable("dns_name", text, bad,
                              "does not fit a DNS name of letter-digit-hyphen labels")
    return text


def ip_address(value: Any) -> str:
    """An IP address, as written (raises ValueError for anything else)."""
    text = one_line(value, "ip_address")
    ipaddress.ip_address(text)
    return text


def ip_network(value: Any) -> str:
    """An IP network in CIDR form, as written (raises ValueError for anything else)."""
    text = one_line(value, "ip_network")
    ipaddress.ip_network(text)
    return text


def systemd_text(value: Any) -> str:
    """A free-form systemd unit setting value (``Description=``): ``%`` written ``%%`` (a
    specifier otherwise), never ending in a backslash (which joins the next line)."""
    text = one_line(value, "systemd_text").replace("%", "%%")
    return text + " " if text.endswith("\\") else text


def systemd_arg(value: Any) -> str:
    """One word of a systemd list or command line (``ReadWritePaths=``, ``ExecStart=``):
    ``%`` as ``%%``; double-quoted with ``\\`` and ``"`` escaped when it holds a space,
    a quote or a backslash."""
    text = one_line(value, "systemd_arg").replace("%", "%%")
    if text and not re.search(r"[\s\"'\\;]", text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def yaml_string(value: Any) -> str:
    """A YAML double-quoted scalar (JSON's string syntax, non-ASCII as itself: YAML reads a
    JSON ``\\u`` escape of a surrogate pair as two broken characters)."""
    return json.dumps(one_line(value, "yaml_string"), ensure_ascii=False)


# --- Markdown ------------------------------------------------------------------------------

#: ASCII punctuation that is syntax anywhere in a line of CommonMark or GitHub-flavoured
#: Markdown (code, emphasis, links, raw HTML, entities, table cells, strikethrough, math, a
#: heading's closing #s): always written backslash-escaped.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>#|~&$])")
#: What starts a block (a list item, a thematic break or a setext underline) when it opens a
#: list item's text: a leading - + = and the . or ) after leading digits.
_MARKDOWN_BLOCK_START = re.compile(r"^([-+=])|^(\d+)([.)])")


def markdown_text(value: Any) -> str:
    """Text that stays literal text in Markdown wherever it stands: a table cell, a heading, a
    list item or link text. Every character CommonMark or GFM could read as syntax there is
    backslash-escaped (CommonMark: any ASCII punctuation may be); - + = and a number's . or )
    only where they would open a block. Markdown cannot break a line inside a cell, so a run of
    line breaks or control characters (only a status detail, never a model value, has them)
    becomes one space: a report is never refused. White space at either end is written as
    character references, so it is neither trimmed nor indentation."""
    text = str(value)
    if any(_refused(c) for c in text):
        text = re.sub(" {2,}", " ", "".join(" " if _refused(c) else c for c in text))
    body = text.strip()
    start = len(text) - len(text.lstrip())
    lead, trail = text[:start], text[start + len(body):]

    def refs(space: str) -> str:
        return "".join(f"&#{ord(c)};" for c in space)
    body = _MARKDOWN_INLINE.sub(r"\\\1", body)
    body = _MARKDOWN_BLOCK_START.sub(lambda m: f"\\{m[1]}" if m[1] else f"{m[2]}\\{m[3]}", body)
    return refs(lead) + body + refs(trail)


#: The filters by the name templates use.
FILTERS: dict[str, Callable[..., str]] = {
    f.__name__: f for f in (
        config_word, frr_text, ios_text, junos_string, pg_hba_token, pgpass_field,
        line_comment, nginx_string, mapfile_string, dns_name, ip_address, ip_network, systemd_text,
        systemd_arg, yaml_string, markdown_text, one_line)
}
