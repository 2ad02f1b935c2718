"""Each destination's escape, read back with that destination's rules: whatever printable text
goes in (validate's free text: no line breaks, controls, format characters) comes back as
exactly that text, in one token, and nothing around it changes."""

from __future__ import annotations

import re
import unicodedata
from html.parser import HTMLParser

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from fellesdrift import syntax
from fellesdrift.network import config

#: Printable text as validate lets it through: any character but line breaks, controls,
#: format characters, surrogates, private use and unassigned ones; ASCII punctuation often.
_CHARS = st.one_of(
    st.sampled_from(list("\"'\\#;{}[]()<>|&$%*_`~!?=+-./:@^ ,0123456789")),
    st.characters(codec="utf-8").filter(
        lambda c: unicodedata.category(c) not in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}))
TEXT = st.text(_CHARS, min_size=1, max_size=60)


def _unescape(body: str) -> str:
    return re.sub(r"\\(.)", r"\1", body)


@given(TEXT)
def test_junos_string_is_one_quoted_token(value: str) -> None:
    out = syntax.junos_string(value)
    m = re.fullmatch(r'"((?:\\.|[^"\\])*)"', out)
    assert m and _unescape(m.group(1)) == value


@given(TEXT)
def test_mapfile_string_is_one_quoted_token(value: str) -> None:
    out = syntax.mapfile_string(value)
    m = re.fullmatch(r'"((?:\\[\\"\']|[^"\\])*)"', out)
    assert m and re.sub(r"\\([\\\"'])", r"\1", m.group(1)) == value


@given(TEXT.filter(lambda v: "$" not in v))
def test_nginx_string_is_one_quoted_token(value: str) -> None:
    out = syntax.nginx_string(value)
    m = re.fullmatch(r'"((?:\\.|[^"\\])*)"', out)
    assert m and _unescape(m.group(1)) == value


def test_nginx_has_no_literal_dollar() -> None:
    with pytest.raises(syntax.Unrepresentable, match=r"'\$'"):
        syntax.nginx_string("cost $5")


@given(TEXT.filter(lambda v: '"' not in v))
def test_pg_hba_token_is_one_field_and_never_a_keyword(value: str) -> None:
    out = syntax.pg_hba_token(value)
    assert out == f'"{value}"'
    line = f"host {out} {out} 127.0.0.1/32 scram-sha-256"
    fields, token, quoted = [], "", False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == " " and not quoted:
            fields.append(token)
            token = ""
        else:
            token += c
    fields.append(token)
    assert fields == ["host", value, value, "127.0.0.1/32", "scram-sha-256"]


@given(TEXT)
def test_pgpass_field_reads_back(value: str) -> None:
    line = f"127.0.0.1:5432:db:{syntax.pgpass_field('us:er')}:{syntax.pgpass_field(value)}"
    fields, field, chars = [], "", iter(line)
    for c in chars:  # as libpq reads a password file: \\ takes the next character as it is
        if c == "\\":
            field += next(chars)
        elif c == ":":
            fields.append(field)
            field = ""
        else:
            field += c
    fields.append(field)
    assert fields == ["127.0.0.1", "5432", "db", "us:er", value]


@given(TEXT)
def test_line_comment_never_continues_onto_the_next_line(value: str) -> None:
    out = syntax.line_comment(value)
    assert value in out and not out.endswith("\\") and "\n" not in out


@given(TEXT)
def test_yaml_string_reads_back(value: str) -> None:
    assert yaml.safe_load(f"label: {syntax.yaml_string(value)}") == {"label": value}


@given(TEXT)
def test_systemd_values(value: str) -> None:
    text = syntax.systemd_text(value)  # a final backslash would join the next line
    assert not text.endswith("\\")
    assert text.replace("%%", "%") == value + (" " if value.endswith("\\") else "")
    arg = syntax.systemd_arg(value)
    m = re.fullmatch(r'"((?:\\.|[^"\\])*)"', arg)
    assert (_unescape(m.group(1)) if m else arg).replace("%%", "%") == value


@given(TEXT.filter(lambda v: "?" not in v and "|" not in v))
def test_router_text_reads_back_as_vtysh_words(value: str) -> None:
    out = syntax.frr_text(value)
    want = " ".join(w for w in value.split(" ") if w)
    if not want:
        return
    assert config.parse(f"interface eth0\n description {out}\nexit\n")[-1] == (
        "interface eth0", f"description {want}")
    assert syntax.ios_text(value) == want


def test_cli_text_refuses_the_help_key_and_vtysh_the_pipe() -> None:
    for f in (syntax.frr_text, syntax.ios_text):
        with pytest.raises(syntax.Unrepresentable, match=r"'\?'"):
            f("Hva?")
    # vtysh (FRR 8.4) answered `description a | include x` by setting "a" and `a| b` with
    # "% Unknown action 'b'": the push then differs from the intended configuration.
    with pytest.raises(syntax.Unrepresentable, match=r"'\|'"):
        syntax.frr_text("a | include x")


@pytest.mark.parametrize("name", ["gis", "okonomi.lab.fellesdrift.internal", "a-b.c0"])
def test_dns_names(name: str) -> None:
    assert syntax.dns_name(name) == name


@pytest.mark.parametrize("name", ["-a", "a..b", "a_b", "a b", "a;b", "æ.no", "a" * 64])
def test_not_dns_names(name: str) -> None:
    with pytest.raises(syntax.Unrepresentable):
        syntax.dns_name(name)


@pytest.mark.parametrize("word", ["a b", "x;y", "a!", "\"q", ""])
def test_config_word_refuses_more_than_one_word(word: str) -> None:
    with pytest.raises(syntax.Unrepresentable):
        syntax.config_word(word)


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text += data


def _read(markdown: str) -> _Collect:
    html = MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)
    parser = _Collect()
    parser.feed(html)
    return parser


MARKDOWN_SYNTAX = ["- x", "1. x", "1986) x", "---", "+ x", "=== x", "> q", "# h", "x #",
                   "    code", "<b>x</b>", "a|b", "[l](u)", "![i](u)", "`c`", "*e*", "_e_",
                   "~~s~~", "&amp;", "x\\", "$x$", "<http://x>", "\\*", " lead", "trail "]


@pytest.mark.parametrize("value", MARKDOWN_SYNTAX)
def test_markdown_syntax_is_written_as_text(value: str) -> None:
    _stays_text(value)


@settings(max_examples=1000)
@given(TEXT)
def test_markdown_text_stays_text_in_a_cell_a_heading_and_a_list(value: str) -> None:
    _stays_text(value)


def _stays_text(value: str) -> None:
    cell = syntax.markdown_text(value)
    table = _read(f"| a | b |\n|---|---|\n| {cell} | x |\n")
    assert table.tags == ["table", "thead", "tr", "th", "th", "tbody", "tr", "td", "td"]
    assert table.text.replace("\n", "") == f"ab{value}x"
    heading = _read(f"## {cell} (4036)\n")
    assert heading.tags == ["h2"] and heading.text.strip("\n") == f"{value} (4036)"
    item = _read(f"- {cell}, converged (failed): x\n")
    assert item.tags == ["ul", "li"] and item.text.strip("\n") == f"{value}, converged (failed): x"
