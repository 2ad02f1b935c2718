#!/usr/bin/env bash
# Provide the Pulumi engine (the `pulumi` CLI) and a Python language host at the version of the
# pulumi SDK pinned in pyproject.toml. Prints the folder holding them on stdout.
#
#   1. a `pulumi` on PATH at least that version is used as it is (it ships its own language host);
#   2. otherwise both are built from the Go module proxy with this folder as the wrapper module
#      (go.mod/go.sum pin pkg/v3 and sdk/v3), into a cache outside the repository keyed by the
#      version and a hash of this folder, so a second run costs nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
say() { printf 'engine: %s\n' "$*" >&2; }

want=$(sed -n 's/^ *"pulumi==\([0-9.]*\)".*/\1/p' "$root/pyproject.toml")
[ -n "$want" ] || { say "no pulumi==X pin found in pyproject.toml"; exit 2; }

version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }

if [ -z "${FELLESDRIFT_BUILD_ENGINE:-}" ] && command -v pulumi >/dev/null 2>&1; then
  have=$(pulumi version 2>/dev/null | sed 's/^v//')
  if [ -n "$have" ] && version_ge "$have" "$want"; then
    say "using pulumi $have from PATH ($(command -v pulumi))"
    dirname "$(command -v pulumi)"
    exit 0
  fi
  say "pulumi on PATH is ${have:-unknown}, older than $want: building $want"
fi

stamp=$(cat "$here"/go.mod "$here"/go.sum "$here"/*.go "$here"/pulumi-* | sha256sum | cut -c1-12)
cache=${FELLESDRIFT_CACHE:-$HOME/.cache/fellesdrift}/pulumi-engine/v$want-$stamp
bin=$cache/bin
if [ -x "$bin/pulumi" ] && [ -x "$bin/pulumi-language-python" ]; then
  say "pulumi $want cached in $bin"
  echo "$bin"
  exit 0
fi

# One build at a time on this machine (several commands may ask at once): wait, then look again.
mkdir -p "${cache%/*}"
exec 9>"${cache%/*}/.build.lock"
flock 9
if [ -x "$bin/pulumi" ] && [ -x "$bin/pulumi-language-python" ]; then
  say "pulumi $want built meanwhile in $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null 2>&1 || { say "Go is needed to build the Pulumi engine: install Go 1.25 or newer"; exit 2; }
grep -q "github.com/pulumi/pulumi/pkg/v3 v$want\$" "$here/go.mod" || {
  say "scripts/engine/go.mod does not pin pkg/v3 v$want (the SDK pin): run 'make engine-pin'"; exit 2; }

mkdir -p "$bin.tmp"
ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$want"
say "building pulumi v$want from the Go module proxy (first time only: several minutes on 2 cores)…"
start=$SECONDS
(cd "$here" && GOFLAGS=-mod=readonly go build -trimpath -ldflags "$ldflags" \
    -o "$bin.tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
say "building the Python language host…"
(cd "$here" && GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w -X main.version=$want" \
    -o "$bin.tmp/pulumi-language-python" .)
install -m 0755 "$here/pulumi-language-python-exec" "$here/pulumi-resource-pulumi-python" "$bin.tmp/"
rm -rf "$bin" && mv "$bin.tmp" "$bin"
say "built in $((SECONDS - start)) s into $bin"
echo "$bin"
