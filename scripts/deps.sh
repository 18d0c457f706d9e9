#!/usr/bin/env bash
# Installs what the tests need and is not Go: a Valkey or Redis server and
# its CLI (for Cluster creation), curl, and systemd-analyze. Idempotent; a
# no-op when all are there.
set -euo pipefail

need=()
if ! command -v valkey-server >/dev/null && ! command -v redis-server >/dev/null; then
  need+=(redis-server)
fi
if ! command -v valkey-cli >/dev/null && ! command -v redis-cli >/dev/null; then
  need+=(redis-tools)
fi
command -v curl >/dev/null || need+=(curl) # the walkthrough (make demo) and its test; internal/listen's --http1.1/--http2 tests
command -v h2load >/dev/null || need+=(nghttp2-client) # bench: the HTTP/2 rows (h2load)
command -v systemd-analyze >/dev/null || need+=(systemd) # verifies deploy/edgecache.service
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${need[*]} with apt"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's package may start a server on 6379; the tests use their own ports.
