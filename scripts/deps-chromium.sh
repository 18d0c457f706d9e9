#!/usr/bin/env bash
# Installs Debian's chromium for the status-page test (internal/admin/statuspage_test.go,
# headless). Idempotent: a no-op when a chromium binary is already on PATH.
# The test skips without chromium, except under CI=true, where it fails.
set -euo pipefail

for b in chromium chromium-browser; do
  command -v "$b" >/dev/null && exit 0
done

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "deps: installing chromium with apt"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# fonts-dejavu-core: the screenshot has readable text without pulling every font.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
command -v chromium >/dev/null
