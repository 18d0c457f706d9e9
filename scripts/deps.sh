#!/usr/bin/env bash
# Installs what the tests need and is not Go: a Valkey or Redis server and
# its CLI (for Cluster creation), curl, systemd-analyze, and nginx (whose
# -t checks the bench's nginx config; never started). Idempotent; a
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
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx) # bench: nginx -t parses the bench's nginx config (TestRows19Templates)
[ ${#need[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing ${need[*]} with apt"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# policy-rc.d (containers) or not, the packaged services must not start:
# the tests run their own instances on ports of their own (Debian's
# redis-server would take 6379, nginx 80).
$SUDO env RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
for svc in nginx redis-server; do
  $SUDO service "$svc" stop >/dev/null 2>&1 || true
done
