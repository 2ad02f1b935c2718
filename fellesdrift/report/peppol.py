"""The official rules of an EHF invoice, run offline: EN 16931 (UBL) and Peppol BIS Billing 3.0,
after the UBL 2.1 XML Schema (:mod:`fellesdrift.ubl`).

The rules are OpenPeppol's Schematron, compiled to XSLT, as phive ships them in its
``phive-rules-peppol`` jar on Maven Central. :func:`fetch` downloads the pinned jar once into
``~/.cache/fellesdrift/tools/`` (checked against its SHA-256) and extracts the two stylesheets;
:class:`Validator` runs both over a document with Saxon (``saxonche``, XSLT 3.0) and reads the
failed assertions of the SVRL report, each with its rule id and flag (fatal or warning).

    python -m fellesdrift.peppol fetch              # what scripts/tools/peppol-rules.sh runs
                                                    # (the rules and the UBL 2.1 schemas)
    python -m fellesdrift.peppol validate FILE.xml  # findings, exit 1 on a fatal one
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

PHIVE_VERSION = "4.3.7"
#: The newest Peppol BIS Billing 3.0 rules in that jar (the May 2026 release).
RELEASE = "2026.5"
JAR_URL = ("https://repo1.maven.org/maven2/com/helger/phive/rules/phive-rules-peppol/"
           f"{PHIVE_VERSION}/phive-rules-peppol-{PHIVE_VERSION}.jar")
JAR_SHA256 = "c82aaeda5ca16166034421393d160ec6cf77460b16e027eecc4bb5fe67a552ce"
#: The stylesheets, in the order they run: the European norm, then Peppol's own rules.
STYLESHEETS = ("CEN-EN16931-UBL.xslt", "PEPPOL-EN16931-UBL.xslt")
SVRL = "{http://purl.oclc.org/dsdl/svrl}"

Flag = Literal["fatal", "warning"]


class RulesError(RuntimeError):
    """The rules could not be fetched or run."""


def rules_dir() -> Path:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fellesdrift" / "tools" / f"peppol-rules-{PHIVE_VERSION}-{RELEASE}"


def download(url: str, sha256: str, path: Path) -> None:
    """Download ``url`` to ``path`` and check it against its pinned SHA-256."""
    try:
        with urllib.request.urlopen(url, timeout=120) as response, path.open("wb") as f:
            while chunk := response.read(1 << 16):
                f.write(chunk)
    except OSError as e:
        raise RulesError(f"cannot download {url}: {e}") from e
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise RulesError(f"{url} has SHA-256 {digest}, not the pinned {sha256}")


def install(staged: Path, folder: Path) -> Path:
    """Put a fully extracted ``staged`` folder in place of ``folder`` (a partial one from an
    interrupted run is replaced)."""
    if folder.exists():
        shutil.rmtree(folder)
    staged.rename(folder)
    return folder


def fetch() -> Path:
    """The folder holding the two stylesheets; downloads and checks the jar the first time."""
    folder = rules_dir()
    if all((folder / name).is_file() for name in STYLESHEETS):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        jar = Path(tmp) / "rules.jar"
        download(JAR_URL, JAR_SHA256, jar)
        staged = Path(tmp) / "xslt"
        staged.mkdir()
        with zipfile.ZipFile(jar) as z:
            for name in STYLESHEETS:
                member = f"external/schematron/openpeppol/{RELEASE}/xslt/{name}"
                (staged / name).write_bytes(z.read(member))
        return install(staged, folder)


@dataclass(frozen=True)
class Finding:
    """One failed rule: its id (BR-CO-15, PEPPOL-EN16931-R003 …), flag, where and what."""

    rule: str
    flag: Flag
    location: str
    text: str

    def __str__(self) -> str:
        return f"{self.flag} [{self.rule}] {self.text} (at {self.location})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def findings(svrl: str) -> list[Finding]:
    """The failed assertions and successful reports of one SVRL report."""
    root = ET.fromstring(svrl)
    out = []
    for el in root:
        if el.tag not in (f"{SVRL}failed-assert", f"{SVRL}successful-report"):
            continue
        flag = el.get("flag", "fatal")
        text = " ".join((el.findtext(f"{SVRL}text") or "").split())
        out.append(Finding(el.get("id", "?"), "warning" if flag == "warning" else "fatal",
                           el.get("location", ""), text))
    return out


_PROCESSOR: Any = None


def _processor() -> Any:
    """Saxon's processor: one per process, as SaxonC asks."""
    global _PROCESSOR
    if _PROCESSOR is None:
        try:
            from saxonche import PySaxonProcessor
        except ImportError as e:  # pragma: no cover - saxonche is a locked dependency
            raise RulesError("saxonche is not installed; run make setup") from e
        _PROCESSOR = PySaxonProcessor(license=False)
    return _PROCESSOR


class Validator:
    """The UBL 2.1 XML Schema (:mod:`fellesdrift.ubl`) and both rule sets, compiled once;
    :meth:`check` runs them over one document."""

    def __init__(self, folder: Path | None = None, schemas: Path | None = None) -> None:
        from .ubl import Schema  # ubl builds on this module's findings and downloads

        self._schema = Schema(schemas)
        folder = folder or fetch()
        xslt = _processor().new_xslt30_processor()
        self._stylesheets = [xslt.compile_stylesheet(stylesheet_file=str(folder / name))
                             for name in STYLESHEETS]

    def check(self, document: bytes) -> list[Finding]:
        """The schema's errors (rule UBL-2.1-XSD, fatal), then the rules' findings."""
        return self.check_all([document])[0]

    def check_all(self, documents: list[bytes]) -> list[list[Finding]]:
        """:meth:`check` of each document (the schema checks them all in one run)."""
        return [schema + self._rules(document) for document, schema
                in zip(documents, self._schema.check_all(documents), strict=True)]

    def _rules(self, document: bytes) -> list[Finding]:
        out: list[Finding] = []
        node = _processor().parse_xml(xml_text=document.decode("utf-8"))
        for stylesheet in self._stylesheets:
            svrl = stylesheet.transform_to_string(xdm_node=node)
            if svrl is None:
                raise RulesError(f"the rules produced no report: {stylesheet.error_message}")
            out.extend(findings(svrl))
        return out


def fatal(found: list[Finding]) -> list[Finding]:
    return [f for f in found if f.flag == "fatal"]


def main(argv: list[str]) -> int:
    if argv[:1] == ["fetch"] and len(argv) == 1:
        from . import ubl

        print(f"peppol rules {RELEASE} (phive-rules-peppol {PHIVE_VERSION}): {fetch()}")
        print(f"UBL 2.1 schemas (ph-ubl21): {ubl.fetch()}")
        return 0
    if argv[:1] == ["validate"] and len(argv) > 1:
        validator = Validator()
        worst = 0
        every = validator.check_all([Path(name).read_bytes() for name in argv[1:]])
        for name, found in zip(argv[1:], every, strict=True):
            for f in found:
                print(f"{name}: {f}")
            if fatal(found):
                worst = 1
            print(f"{name}: {len(fatal(found))} fatal, {len(found) - len(fatal(found))} "
                  "warning(s)")
        return worst
    print(__doc__.strip().splitlines()[-2].strip(), file=sys.stderr)
    print("usage: python -m fellesdrift.peppol fetch | validate FILE.xml…", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
