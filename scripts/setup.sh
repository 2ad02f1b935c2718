#!/usr/bin/env bash
# Install everything fellesdrift needs on this machine; safe to run again (it skips what is done).
#   - Debian packages for the lab (as root): podman, runc, debootstrap, …
#   - the Python virtual environment .venv from requirements.lock, with fellesdrift installed
#   - the Pulumi engine and Python language host (scripts/engine/build.sh; cached by version)
#   - the EHF rules and actionlint (scripts/tools/; cached by version)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
say() { printf 'setup: %s\n' "$*" >&2; }

# Every program fellesdrift runs here comes from one of these (fellesdrift/pipeline/doctor.py PROGRAMS
# names each program's package; tests/unit/test_setup_deps.py checks that the code runs nothing
# else outside .venv, the engine cache and Debian's base system). Besides those:
# netavark: podman's network backend; ca-certificates: the Go module proxy and PyPI over TLS
# python3-venv: `python3 -m venv` (.venv)
# chromium: headless, renders the HTML report in tests/unit/test_report.py
# libxml2-utils: xmllint checks every invoice against the UBL 2.1 XML Schema (fellesdrift/report/ubl.py)
# frr: `vtysh --dryrun` checks the rendered router configurations in tests/unit (its daemons are
#      not wanted here: they are disabled right after installing)
# nginx, unbound: `nginx -t` and `unbound-checkconf` read the role templates rendered from a
#      hostile inventory in tests/unit/test_escaping_corpus.py (neither daemon is used here)
packages=(podman runc netavark debootstrap uidmap iproute2 iptables procps openssh-client gcc git libxml2-utils
          python3 python3-venv ca-certificates chromium frr nginx unbound postgresql postgresql-client-common)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]} — run 'sudo apt-get install ${missing[*]}'"; exit 2
  fi
  say "installing ${missing[*]} …"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  for daemon in frr nginx unbound; do
    if [[ " ${missing[*]} " == *" $daemon "* ]]; then
      systemctl disable --now "$daemon" >/dev/null 2>&1 || true
    fi
  done
fi

python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  say "Python 3.11 or newer is needed (found $("$python" --version)); set PYTHON=…"; exit 2; }
stamp=$(cat pyproject.toml requirements.lock | sha256sum | cut -c1-16)
if [ "$(cat .venv/.fellesdrift-stamp 2>/dev/null)" != "$stamp" ]; then
  say "creating .venv from requirements.lock (first time: about 2 minutes) …"
  [ -x .venv/bin/python ] || "$python" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements.lock
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$stamp" > .venv/.fellesdrift-stamp
fi

bash scripts/engine/build.sh >/dev/null
# The official EHF rules the invoices are checked with (Maven Central; cached, pinned SHA-256).
bash scripts/tools/peppol-rules.sh >/dev/null
# actionlint, which lints the GitHub workflow in the unit tests (Go module proxy; cached).
bash scripts/tools/actionlint.sh -version >/dev/null
say "ready: .venv/bin/fellesdrift ($(.venv/bin/fellesdrift --help >/dev/null && echo ok))"
