#!/usr/bin/env bash
# Runs golangci-lint at the pinned version, building it into bin/tools
# from the Go module proxy the first time (no download of a prebuilt
# binary: only the module proxy is reachable where edgecache is built).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=v2.15.0
BIN="$PWD/bin/tools/golangci-lint"
if ! [ -x "$BIN" ] || ! "$BIN" --version 2>/dev/null | grep -q "version ${VERSION#v} "; then
  echo "lint: building golangci-lint $VERSION into bin/tools"
  GOBIN="$PWD/bin/tools" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$VERSION"
fi
exec "$BIN" run --max-same-issues=0 --max-issues-per-linter=0 "$@" ./...
