#!/usr/bin/env bash
# Installs the toolchains that build the example plugins, idempotently: a
# no-op when everything is there. Go's wasip1 port ships with Go itself.
#
#   scripts/deps-plugins.sh          C (clang, wasi-libc, lld) and wabt: what
#                                    `make plugins-check` needs (CI runs this)
#   scripts/deps-plugins.sh --all    also Rust (Debian's rustc + the wasm32
#                                    std) and node/npm for AssemblyScript:
#                                    what `make plugins` needs
set -euo pipefail

all=0
[ "${1:-}" = "--all" ] && all=1

need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
want() { for p in "$@"; do have_pkg "$p" || need+=("$p"); done; }

# C: clang targets wasm32-wasi with wasi-libc's sysroot, links with wasm-ld
# (lld) and needs compiler-rt's builtins for wasm32.
want clang lld wasi-libc libclang-rt-14-dev-wasm32
# wat2wasm for the hostile test modules.
want wabt
if [ $all -eq 1 ]; then
  want rustc cargo libstd-rust-dev-wasm32
  command -v npm >/dev/null || want nodejs npm
fi

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "deps-plugins: installing ${need[*]} with apt"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ $all -eq 1 ]; then
  # AssemblyScript comes from npm, pinned by the SDK's package-lock.json.
  here="$(cd "$(dirname "$0")/.." && pwd)"
  if [ ! -x "$here/plugins/sdk/assemblyscript/node_modules/.bin/asc" ]; then
    (cd "$here/plugins/sdk/assemblyscript" && npm ci --no-audit --no-fund --silent)
  fi
fi
