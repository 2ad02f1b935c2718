"""The UBL 2.1 XML Schema check of an EHF document, offline, before the official rules.

The schemas are OASIS's UBL 2.1 XSDs as ph-ubl ships them on Maven Central (``com.helger.ubl:
ph-ubl21``: the main documents and the common components), with the two schemas they import by
namespace only (``com.helger.xsd``: the CCTS core component types and XML Signature). :func:`fetch`
downloads the pinned jars once into ``~/.cache/fellesdrift/tools/`` (each checked against its
SHA-256), extracts the schemas and writes ``check.xsd``, which imports those two by location
first and then the Invoice and CreditNote schemas, so one schema set validates either document.
libxml2's ``xmllint`` (Debian's libxml2-utils) validates; each error is a fatal
:class:`fellesdrift.peppol.Finding` with rule :data:`RULE`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

from fellesdrift.report.peppol import Finding, RulesError, download, install, rules_dir

#: The rule id of a schema error.
RULE = "UBL-2.1-XSD"
MAVEN = "https://repo1.maven.org/maven2"
#: (url, SHA-256, the schemas it holds: member in the jar → file in the folder)
JARS: tuple[tuple[str, str, dict[str, str]], ...] = (
    (f"{MAVEN}/com/helger/ubl/ph-ubl21/10.2.0/ph-ubl21-10.2.0.jar",
     "7317ddd448f58cdf4e550878d839be8d3324b410771ba462a35ced49ccb26a52",
     {"external/schemas/ubl21/": ""}),
    (f"{MAVEN}/com/helger/xsd/ph-xsds-ccts-cct-schemamodule/4.1.0/"
     "ph-xsds-ccts-cct-schemamodule-4.1.0.jar",
     "ec0e60be5265b09fac75a57a4b284244820c23f0481a1c75802ba4eb6338b0fd",
     {"schemas/CCTS_CCT_SchemaModule.xsd": "CCTS_CCT_SchemaModule.xsd"}),
    (f"{MAVEN}/com/helger/xsd/ph-xsds-xmldsig/4.1.0/ph-xsds-xmldsig-4.1.0.jar",
     "66590e38b0994d0fd6cd89b1588a3c96fad3a3c85494cf764783fe0c4acc9c3d",
     {"schemas/xmldsig-core-schema.xsd": "xmldsig-core-schema.xsd"}),
)
CHECK = "check.xsd"
_CHECK_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by fellesdrift.ubl: the UBL 2.1 Invoice and CreditNote schemas, with the schemas
     they import by namespace only imported by location first. -->
<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:fellesdrift:ubl">
  <xsd:import schemaLocation="CCTS_CCT_SchemaModule.xsd"
    namespace="urn:un:unece:uncefact:data:specification:CoreComponentTypeSchemaModule:2"/>
  <xsd:import schemaLocation="xmldsig-core-schema.xsd"
    namespace="http://www.w3.org/2000/09/xmldsig#"/>
  <xsd:import schemaLocation="maindoc/UBL-Invoice-2.1.xsd"
    namespace="urn:oasis:names:specification:ubl:schema:xsd:Invoice-2"/>
  <xsd:import schemaLocation="maindoc/UBL-CreditNote-2.1.xsd"
    namespace="urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2"/>
</xsd:schema>
"""
_ERROR = re.compile(r"^(.+?\.xml):(\d+): (.*)$")
#: Namespaces as the documents' prefixes, to shorten xmllint's messages.
_PREFIXES = {
    "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2": "cbc",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2": "cac",
    "urn:oasis:names:specification:ubl:schema:xsd:CommonExtensionComponents-2": "ext",
    "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2": "Invoice",
    "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2": "CreditNote",
}


def _message(text: str) -> str:
    text = " ".join(text.replace("Schemas validity error : ", "").split())
    for uri, prefix in _PREFIXES.items():
        text = text.replace(f"{{{uri}}}", f"{prefix}:")
    return text


def schemas_dir() -> Path:
    return rules_dir().with_name("ubl21-xsd-10.2.0")


def fetch() -> Path:
    """The folder holding ``check.xsd`` and the schemas; downloads them the first time."""
    folder = schemas_dir()
    if (folder / CHECK).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        staged = Path(tmp) / "xsd"
        for i, (url, sha256, members) in enumerate(JARS):
            jar = Path(tmp) / f"{i}.jar"
            download(url, sha256, jar)
            with zipfile.ZipFile(jar) as z:
                for name in z.namelist():
                    for prefix, target in members.items():
                        if name.startswith(prefix) and name.endswith(".xsd"):
                            path = staged / (target or name[len(prefix):])
                            path.parent.mkdir(parents=True, exist_ok=True)
                            path.write_bytes(z.read(name))
        (staged / CHECK).write_text(_CHECK_XSD, encoding="utf-8")
        return install(staged, folder)


class Schema:
    """The UBL 2.1 schemas; :meth:`check` validates one document against them."""

    def __init__(self, folder: Path | None = None) -> None:
        self._check = (folder or fetch()) / CHECK
        xmllint = shutil.which("xmllint")
        if xmllint is None:
            raise RulesError("xmllint is not installed: install Debian's libxml2-utils "
                             "(make setup)")
        self._xmllint = xmllint

    def check(self, document: bytes) -> list[Finding]:
        """Every schema error of ``document``, each a fatal finding (none when it is valid)."""
        return self.check_all([document])[0]

    def check_all(self, documents: list[bytes]) -> list[list[Finding]]:
        """:meth:`check` of each document, in one run of xmllint (it reads the schemas once)."""
        if not documents:
            return []
        with tempfile.TemporaryDirectory() as tmp:
            files = [Path(tmp) / f"{i}.xml" for i in range(len(documents))]
            for path, document in zip(files, documents, strict=True):
                path.write_bytes(document)
            proc = subprocess.run([self._xmllint, "--noout", "--schema", str(self._check),
                                   *map(str, files)], capture_output=True, timeout=300,
                                  check=False)
        stderr = proc.stderr.decode(errors="replace")
        found: list[list[Finding]] = [[] for _ in documents]
        for line in stderr.splitlines():
            m = _ERROR.match(line)
            if m and m.group(1) in {str(f) for f in files}:
                found[files.index(Path(m.group(1)))].append(
                    Finding(RULE, "fatal", f"line {m.group(2)}", _message(m.group(3))))
        if proc.returncode not in (0, 3) or (proc.returncode == 3 and not any(found)):
            raise RulesError(f"xmllint could not check against {self._check} (exit "
                             f"{proc.returncode}): {stderr[-500:]}")
        return found
