#!/usr/bin/env bash
# make bench: edgecache, nginx (proxy_cache) and Varnish (malloc) side by
# side on loopback, shared and pinned CPUs, in about ten minutes.
#
# Installs what it needs from Debian when missing (wrk, nginx, varnish,
# redis-server), builds bin/edgecache, bin/demo-origin and bin/edgebench,
# then runs `bin/edgebench run`, which prints one table per variant, the
# cold start, the goals of issue 7 and a pprof of the L1 hit path, and
# writes them to bench/results/<date>.txt.
#
#   DURATION=10s   each measured wrk run
#   VARIANTS=shared,pinned
#   BENCH_FLAGS=   more flags for edgebench run (-keep, -profile=false,
#                  -plugins DIR, -c 64, -cold 5, ...)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
GO=${GO:-go}

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client) # the HTTP/2 rows
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v varnishd >/dev/null || [ -x /usr/sbin/varnishd ] || need+=(varnish)
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v taskset >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
	echo "bench: installing ${need[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	# policy-rc.d (containers) or not, the packaged services must not start:
	# the benchmark runs its own instances on free loopback ports.
	DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	for svc in nginx varnish redis-server; do
		$SUDO service "$svc" stop >/dev/null 2>&1 || true
	done
fi
export PATH="$PATH:/usr/sbin:/sbin"

GO_LDFLAGS=${GO_LDFLAGS:-$(cat scripts/ldflags)}
$GO build -ldflags="$GO_LDFLAGS" -o "$BIN/edgecache" ./cmd/edgecache
$GO build -o "$BIN/demo-origin" ./examples/origin/cmd/demo-origin
$GO build -ldflags="$GO_LDFLAGS" -o "$BIN/edgebench" ./bench

# shellcheck disable=SC2086
exec "$BIN/edgebench" run -bin "$BIN" -duration "${DURATION:-10s}" -variants "${VARIANTS:-shared,pinned}" ${BENCH_FLAGS:-}
