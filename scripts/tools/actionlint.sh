#!/usr/bin/env bash
# actionlint (the GitHub Actions workflow linter, a Go program): built once from the Go module
# proxy into a cache keyed by version, then run with the given arguments.
#   scripts/tools/actionlint.sh .github/workflows/fellesdrift.yml
set -euo pipefail
version=v1.7.12
bin=${XDG_CACHE_HOME:-$HOME/.cache}/fellesdrift/tools/actionlint-$version
if [ ! -x "$bin/actionlint" ]; then
  printf 'actionlint: building %s from the Go module proxy (once per machine) …\n' "$version" >&2
  mkdir -p "$bin"
  GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$version"
fi
exec "$bin/actionlint" "$@"
