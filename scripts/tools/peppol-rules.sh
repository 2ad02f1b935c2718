#!/usr/bin/env bash
# The official EHF rules (EN 16931 UBL and Peppol BIS Billing 3.0, compiled Schematron XSLT):
# phive's rules jar from Maven Central, downloaded once into ~/.cache/fellesdrift/tools/,
# checked against its pinned SHA-256 (fellesdrift/report/peppol.py), the two stylesheets extracted.
#   scripts/tools/peppol-rules.sh            # fetch (quick when done)
#   scripts/tools/peppol-rules.sh validate invoices/lab/2026-12/*.xml
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -eq 0 ]; then set -- fetch; fi
exec "$root/.venv/bin/python" -m fellesdrift.report.peppol "$@"
