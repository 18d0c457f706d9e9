#!/usr/bin/env bash
# make soak: steady load on a gateway with 3 shards on loopback; every
# minute a config reload and a shard restart; prints failed requests
# (budget 0) and memory growth. SOAK=10m by default.
#
#   SOAK=3m          how long
#   SOAK_FLAGS=      more flags for edgebench soak (-rate 2000, -workers 16, -keys 10000, -unique 0.02, -every 1m)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
GO=${GO:-go}
if ! command -v redis-server >/dev/null && ! command -v valkey-server >/dev/null; then
	./scripts/deps.sh
fi
GO_LDFLAGS=${GO_LDFLAGS:-$(cat scripts/ldflags)}
$GO build -ldflags="$GO_LDFLAGS" -o "$BIN/edgecache" ./cmd/edgecache
$GO build -ldflags="$GO_LDFLAGS" -o "$BIN/edgebench" ./bench
# shellcheck disable=SC2086
exec "$BIN/edgebench" soak -bin "$BIN" -duration "${SOAK:-10m}" ${SOAK_FLAGS:-}
