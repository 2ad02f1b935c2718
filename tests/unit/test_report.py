"""The report as a reader sees it: rendered by headless Chromium from the sample inventories,
with a recorded status; a screenshot goes to artifacts/report.png (kept by CI)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from unittest.mock import patch

import pytest

from fellesdrift import paths
from fellesdrift.change import audit
from fellesdrift.cli import app as cli
from fellesdrift.inventory import load as inventory
from fellesdrift.inventory.model import NetworkDevice
from fellesdrift.report import billing, invoice, report, status
from fellesdrift.report.status import PhaseResult

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = inventory.load([ROOT / "inventories"])
ENV = "sample"
TODAY = date(2026, 6, 1)
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(autouse=True)
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "LAB_DIR", tmp_path / ".lab")
    return tmp_path / ".lab" / ENV


def record_vinje_converged_and_tokke_failed() -> None:
    """Vinje's sites pass every phase; Tokke's client fails verification; nothing else ran."""
    vinje = [f"vinje-{s.id}-{r}" for s in SAMPLES.municipality("vinje").sites
             for r in ("router", "client")]
    tokke = [f"tokke-{s.id}-{r}" for s in SAMPLES.municipality("tokke").sites
             for r in ("router", "client")]
    status.record(ENV, "provision", {f"{ENV}.vinje": PhaseResult(True, "no pending changes"),
                                     f"{ENV}.tokke": PhaseResult(True, "no pending changes")})
    status.record(ENV, "converge", {h: PhaseResult(True, "changed 4, then 0")
                                    for h in vinje + tokke})
    status.record(ENV, "network", {h: PhaseResult(True, "in sync")
                                   for h in vinje + tokke if h.endswith("-router")})
    status.record(ENV, "verify", {h: PhaseResult(not h.endswith("tokke-radhus-client"),
                                                 "12 passed" if h != "tokke-radhus-client"
                                                 else "1 failed: gis answers")
                                  for h in vinje + tokke})


def device(lease_end: date) -> NetworkDevice:
    return NetworkDevice(platform="cisco_ios", model="C1111-4P", serial="FGL0000TEST",
                         installed=date(2020, 1, 1), lease_end=lease_end)


def test_replacement_is_due_within_the_notice_and_overdue_after_the_lease() -> None:
    assert report.REPLACEMENT_NOTICE_MONTHS == 12
    assert report.replacement(device(date(2026, 5, 31)), TODAY)["state"] == "overdue"
    assert report.replacement(device(date(2026, 6, 1)), TODAY)["state"] == "due"
    assert report.replacement(device(date(2027, 6, 1)), TODAY)["state"] == "due"
    later = report.replacement(device(date(2027, 6, 2)), TODAY)
    assert later["state"] == "ok" and later["due_from"] == "2026-06-02"
    assert report.replacement(None, TODAY)["state"] == "none"


def test_months_before_keeps_the_day_or_takes_the_months_last() -> None:
    assert report.months_before(date(2027, 5, 9), 12) == date(2026, 5, 9)
    assert report.months_before(date(2028, 2, 29), 12) == date(2027, 2, 28)
    assert report.months_before(date(2027, 3, 31), 1) == date(2027, 2, 28)
    assert report.months_before(date(2027, 1, 15), 1) == date(2026, 12, 15)


def test_bandwidth_labels() -> None:
    assert report.mbps(1000, 1000) == "1 Gbit/s"
    assert report.mbps(500, 500) == "500 Mbit/s"
    assert report.mbps(250, 50) == "250 Mbit/s ↓ / 50 Mbit/s ↑"


def test_json_report_is_the_machine_readable_result(tmp_path: Path) -> None:
    record_vinje_converged_and_tokke_failed()
    written = report.write(SAMPLES, ENV, tmp_path / "out", today=TODAY)
    data = json.loads(written.json.read_text())
    assert data["ok"] is False and written.ok is False
    assert [m["slug"] for m in data["municipalities"]] == [m.slug for m in SAMPLES.municipalities]
    vinje = next(m for m in data["municipalities"] if m["slug"] == "vinje")
    assert vinje["converged"] == 2 and vinje["invoice"]["total"] == "128050.00"
    tokke = next(m for m in data["municipalities"] if m["slug"] == "tokke")
    assert tokke["sites"][0]["status"]["verified"]["state"] == "failed"
    assert tokke["sites"][0]["status"]["converged"]["state"] == "ok"
    assert data["totals"]["sites"] == 20 and data["totals"]["sites_converged"] == 2
    assert Decimal(data["totals"]["invoiced"]) == sum(
        Decimal(m["invoice"]["total"]) for m in data["municipalities"])
    assert data["status"]["rows"][0]["site"] == "centre"


def test_html_is_self_contained_and_markdown_is_its_twin(tmp_path: Path) -> None:
    written = report.write(SAMPLES, ENV, tmp_path / "out", today=TODAY)
    html = written.html.read_text()
    assert not re.search(r"<link|<script|\ssrc=|@import|url\(", html)
    assert "<svg" in html and "<style>" in html
    markdown = written.markdown.read_text()
    for m in SAMPLES.municipalities:
        assert f"## {m.name} ({m.code})" in markdown
    assert "](topology.svg)" in markdown and written.svg.read_text().startswith("<svg")
    assert "| **Total per month, excluding VAT** | | | | | **128 050.00 NOK** |" in markdown


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.fail("chromium is not installed: run `make setup` (it installs the Debian "
                    "package chromium, which renders the report in this test)", pytrace=False)
    return found


def _chromium_run(binary: str, profile: Path, *args: str) -> str:
    proc = subprocess.run(
        [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--hide-scrollbars", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, f"chromium failed: {proc.stderr[-2000:]}"
    return proc.stdout


def test_rendered_report_in_chromium(tmp_path: Path) -> None:
    binary = _chromium()
    record_vinje_converged_and_tokke_failed()
    written = report.write(SAMPLES, ENV, tmp_path / "out", today=TODAY)
    url = written.html.resolve().as_uri()
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "report.png"
    screenshot.unlink(missing_ok=True)
    _chromium_run(binary, tmp_path / "profile", "--window-size=1280,2400",
                  f"--screenshot={screenshot}", url)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 50_000  # a page, not a blank

    dom = _chromium_run(binary, tmp_path / "profile", "--dump-dom", url)
    for m in SAMPLES.municipalities:
        assert f'id="{m.slug}"' in dom and m.name in dom
    # Vinje's invoice, computed here from the catalogue without the invoice module.
    vinje = SAMPLES.municipality("vinje")
    prices = {s.id: s for s in SAMPLES.centre.services}
    total = Decimal(0)
    for sub in vinje.services:
        service = prices[sub.service]
        areas = service.areas or ["administration", "education", "health_care", "technical",
                                  "culture"]
        count = (len(vinje.sites) if service.billing == "per_site"
                 else sum(getattr(vinje.users, a) for a in areas))
        total += count * service.prices[sub.tier]
    assert total == Decimal("128050.00")
    assert re.search(r'<section class="municipality" id="vinje">.*?data-total="128050.00">'
                     r"128 050.00 NOK</td>", dom, re.S)
    # The topology: one node per site, coloured by its status, links labelled with bandwidth.
    nodes = re.findall(r'<g class="site-node (ok|failed|unknown)" data-site="([a-z0-9-]+)"', dom)
    sites = [f"{m.slug}-{s.id}" for m in SAMPLES.municipalities for s in m.sites]
    assert sorted(site for _, site in nodes) == sorted(sites)
    states = dict((site, state) for state, site in nodes)
    assert states["vinje-radhus"] == states["vinje-helsetun"] == "ok"
    assert states["tokke-radhus"] == "failed" and states["seljord-radhus"] == "unknown"
    assert dom.count('<g class="link"') == len(sites)
    assert "250 Mbit/s ↓ / 50 Mbit/s ↑" in dom  # Drangedal's DSL link
    for h in SAMPLES.centre.shared_hosts:
        assert h.hostname in dom
    # The convergence tables: Tokke's failure shows with its detail.
    assert "2 of 20 sites converged" in dom
    assert re.search(r'data-site="tokke-radhus">.*?<td class="state failed"[^>]*>failed</td>'
                     r".*?1 failed: gis answers", dom, re.S)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with patch.object(sys, "argv", ["fellesdrift", *args]):
        try:
            cli.main()
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out


def test_report_command_says_where_the_report_is(capsys: pytest.CaptureFixture[str],
                                                 tmp_path: Path) -> None:
    code, out = run(capsys, "report", "--env", ENV, "--out", str(tmp_path / "r"),
                    str(ROOT / "tests" / "fixtures" / "inventories"))
    assert code == 0
    assert out.strip().splitlines()[-1] == f"report: {tmp_path / 'r' / 'report.html'}"
    assert (tmp_path / "r" / "report.json").exists() and (tmp_path / "r" / "report.md").exists()


def test_status_command_exits_1_until_every_site_converged(
        capsys: pytest.CaptureFixture[str]) -> None:
    fixtures = str(ROOT / "tests" / "fixtures" / "inventories")
    code, out = run(capsys, "status", "--env", ENV, "--json", fixtures)
    data = json.loads(out)
    assert code == 1 and data["ok"] is False and data["sites"] == 3
    assert {r["converged"]["state"] for r in data["rows"]} == {"unknown"}

    model = inventory.load([Path(fixtures)])
    every = ["core-router", *(h.hostname for h in model.centre.shared_hosts)]
    every += [f"{m.slug}-{s.id}-{r}" for m in model.municipalities for s in m.sites
              for r in ("router", "client")]
    done = PhaseResult(True)
    status.record(ENV, "provision", {f"{ENV}.{t}": done for t in ("core", "tokke", "vinje")})
    status.record(ENV, "converge", dict.fromkeys(every, done))
    status.record(ENV, "network", {h: done for h in every if h.endswith("router")})
    status.record(ENV, "verify", dict.fromkeys(every, done))
    code, out = run(capsys, "status", "--env", ENV, fixtures)
    assert code == 0, out
    assert "3 of 3 sites (the centre counted) converged" in out

    status.record(ENV, "network", {"vinje-radhus-router": PhaseResult(False, "2 lines differ")})
    code, out = run(capsys, "status", "--env", ENV, fixtures)
    assert code == 1
    assert "vinje/radhus network failed: vinje-radhus-router: 2 lines differ" in out


def test_a_damaged_status_record_is_one_clear_error(capsys: pytest.CaptureFixture[str],
                                                    lab: Path) -> None:
    lab.mkdir(parents=True)
    (lab / "status.json").write_text("[]")
    argv = ["fellesdrift", "status", "--env", ENV, str(ROOT / "tests" / "fixtures" / "inventories")]
    with patch.object(sys, "argv", argv), pytest.raises(SystemExit) as e:
        cli.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and "is not a status record" in err and "Traceback" not in err


# --- A municipality's own page -------------------------------------------------------------

class _Text(HTMLParser):
    """The text of a document, as a reader sees it (no tags, no attributes)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return " ".join(" ".join(parser.parts).split())


def _applied(slug: str, who: str, emergency: str | None, changed: int) -> dict[str, object]:
    """An audit record of one apply of ``slug``'s stack, as `fellesdrift up` appends it."""
    return {"version": 1, "at": "2026-11-28T21:04:00Z", "who": who, "env": ENV,
            "command": "up", "digest": "sha256:" + "ab" * 32, "planned": True, "core": False,
            "municipalities": {slug: "sha256:" + "cd" * 32}, "destroyed": [],
            "outcome": "ok", "error": None, "emergency": emergency,
            "changed": {"provision": {f"{ENV}.{slug}": {"create": changed}}}}


def test_a_municipalitys_page_in_chromium_holds_its_data_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Vinje's page, after Vinje's November invoice was kept and 10 more users in culture were
    registered: what changed and why, the forecast, the last applies of its stack, and nothing
    of any other municipality."""
    binary = _chromium()
    monkeypatch.setattr(paths, "STATE_DIR", tmp_path / "state")
    audit.append(ENV, _applied("vinje", "kari", "fibre cut at the town hall", 4))
    audit.append(ENV, _applied("tokke", "tokke-operator", "tokke flood", 2))
    invoices = tmp_path / "invoices"
    kept = billing.Month.of(invoices, ENV, "2026-11")
    docs = [billing.document(SAMPLES.centre, m, "2026-11", kept.next_number(m.code, m.slug),
                             date(2026, 11, 30)) for m in SAMPLES.municipalities]
    kept.keep(docs, billing.xml_of(docs))
    folder = tmp_path / "inventories"
    shutil.copytree(ROOT / "inventories", folder)
    vinje_file = folder / "vinje.yaml"
    vinje_file.write_text(vinje_file.read_text().replace("culture: 20", "culture: 30"))
    model = inventory.load([folder])
    written = report.write(model, ENV, tmp_path / "out", today=date(2026, 12, 1),
                           invoices=invoices)
    page = written.pages["vinje"]
    assert page == tmp_path / "out" / "vinje" / "index.html"

    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "municipality-page.png"  # kept by CI, as report.png
    screenshot.unlink(missing_ok=True)
    _chromium_run(binary, tmp_path / "profile", "--window-size=1280,3800",
                  f"--screenshot={screenshot}", page.resolve().as_uri())
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    dom = _chromium_run(binary, tmp_path / "profile", "--dump-dom", page.resolve().as_uri())
    text = _text(dom)
    assert "Vinje" in text and "Vinjevegen 192, 3890 Vinje" in text
    # By hand: 128 050 in November; 10 more users in culture × 130 (drift counts every area).
    assert "Total per month, excluding VAT 129 350.00 NOK" in text
    assert ("Compared with invoice 202611-4036-1 (2026-11, issued 2026-11-30): 128 050.00 NOK "
            "then, 129 350.00 NOK now, +1 300.00 NOK per month.") in text
    assert re.search(r'<tr data-change="users"><td>Drift og brukarstøtte[^<]*</td>'
                     r"<td>users in culture</td><td>20</td><td>30</td>\s*"
                     r'<td class="num">\+1 300.00 NOK</td></tr>', dom)
    # The forecast, 2026-12 to 2029-11: 36 × 129 350 and both routers (lease end 2028-05-01)
    # at the catalogue's prices, 24 900 (C1121-8P) and 18 500 (C1111-4P): 4 700 000.
    assert "Forecast, 36 months (2026-12 to 2029-11)" in text
    assert "2027-12 to 2028-11 12 1 552 200.00 NOK 43 400.00 NOK 1 595 600.00 NOK" in text
    assert re.search(r'data-forecast="4700000.00">4 700 000.00 NOK<', dom)
    assert "Vinje rådhus C1121-8P 2028-05-01 2028-05 24 900.00 NOK" in text
    assert "Vinje helsetun C1111-4P 2028-05-01 2028-05 18 500.00 NOK" in text
    # The audit log's applies of Vinje's stack, not Tokke's.
    assert "Last changes applied" in text
    assert "2026-11-28T21:04:00Z kari ok 4 fibre cut at the town hall" in text
    assert "tokke-operator" not in text and "tokke flood" not in dom

    data = json.loads(written.json.read_text())
    own = json.dumps(json.loads(page.with_name("report.json").read_text()), ensure_ascii=False)
    for other in data["municipalities"]:
        if other["slug"] == "vinje":
            continue
        m = model.municipality(other["slug"])
        words = [m.name, *(s.name for s in m.sites), *(s.address for s in m.sites)]
        marks = [m.slug, m.organisation_number or "", *(c.email for c in m.contacts),
                 *(s.lan_prefix for s in m.sites), *(s.device.serial for s in m.sites if s.device)]
        amounts = [other["invoice"]["total"], other["forecast"]["total"]]
        for value in words:
            assert value not in text, (other["slug"], value)
        for value in [*marks, *amounts, *(invoice.nok(Decimal(a)) for a in amounts)]:
            assert value not in dom and value not in own, (other["slug"], value)

    # The report itself shows every municipality's change and forecast, and links each page.
    report_dom = _chromium_run(binary, tmp_path / "profile", "--dump-dom",
                               written.html.resolve().as_uri())
    assert '<a href="vinje/index.html">vinje/index.html</a>' in report_dom
    for m in model.municipalities:
        assert f'id="{m.slug}-changes"' in report_dom and f'id="{m.slug}-forecast"' in report_dom
        assert (tmp_path / "out" / m.slug / "index.html").is_file()
    assert report_dom.count("per month.</p>") == len(model.municipalities)  # every one compared
    assert re.search(r'<section class="municipality" id="vinje">.*?data-forecast="4700000.00">',
                     report_dom, re.S)


def test_a_municipalitys_page_shows_hostile_text_as_text(tmp_path: Path) -> None:
    """Names, addresses and device models with markup in them reach the page as text: the page
    has the same elements and attributes as with plain names."""
    model = "C1121-8P <img src=x onerror=alert(1)>"
    hostile = {"vinje.yaml": {
        "name: Vinje\n": 'name: Vinje <script>alert(1)</script> & "x"\n',
        "name: Vinje rådhus": "name: Vinje <b>rådhus</b> &amp; 'y'",
        "address: Vinjevegen 192, 3890 Vinje": "address: <i>Vinjevegen</i> 192 \"&lt;\"",
        "model: C1121-8P": f"model: {model}"},
        # priced, so that the page has the same rows as with the plain model
        "operations-centre.yaml": {"  C1121-8P: 24900.00": f'  "{model}": 24900.00'}}
    pages = {}
    for kind, files in (("clean", {}), ("hostile", hostile)):
        folder = tmp_path / kind
        shutil.copytree(ROOT / "inventories", folder)
        for name, edits in files.items():
            text = (folder / name).read_text()
            for old, new in edits.items():
                assert old in text
                text = text.replace(old, new, 1)
            (folder / name).write_text(text)
        written = report.write(inventory.load([folder]), ENV, tmp_path / f"out-{kind}",
                               today=date(2026, 12, 1), invoices=tmp_path / "none")
        pages[kind] = written.pages["vinje"].read_text()
    tags = {kind: re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-z-]+(?:=\"[^\"]*\")?)*)", html)
            for kind, html in pages.items()}
    assert [(t, re.findall(r"\s([a-z-]+)", a)) for t, a in tags["hostile"]] == [
        (t, re.findall(r"\s([a-z-]+)", a)) for t, a in tags["clean"]]
    shown = _text(pages["hostile"])
    for value in ('Vinje <script>alert(1)</script> & "x"', "Vinje <b>rådhus</b> &amp; 'y'",
                  '<i>Vinjevegen</i> 192 "&lt;"', model):
        assert value in shown, value
