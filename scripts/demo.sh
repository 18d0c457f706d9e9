#!/usr/bin/env bash
# make demo: the walkthrough of examples/walkthrough/README.md, run for real.
#
# Builds bin/edgecache and bin/demo-origin, starts three local Valkey (or
# Redis) nodes configured with deploy/valkey.conf, the demo origin and the
# gateway, then:
#   1. GET /products/12345 three times: a miss that stores the product for an
#      hour on the shard that owns the key, then hits;
#   2. warms 200 more products and counts keys per shard;
#   3. plans adding a fourth node with `edgecache shardmap plan`;
#   4. starts the fourth node and adds it to the config file, which the
#      gateway watches and reloads;
#   5. reads every product again: moved keys are copied from their previous
#      owner on first read (the rebalance window), none goes to the origin;
#   6. purges the product through the admin API: the next GET is a miss.
#
# Everything listens on 127.0.0.1 and stops when the script exits. Ports
# (override when taken): DEMO_VALKEY_PORTS (four), DEMO_ORIGIN_PORT,
# DEMO_GATEWAY_PORT, DEMO_ADMIN_PORT. BIN is where binaries go (default
# bin); DEMO_KEEP_DIR=1 keeps the temporary directory (config, logs).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

BIN=${BIN:-bin}
GO=${GO:-go}
read -r -a vports <<<"${DEMO_VALKEY_PORTS:-7101 7102 7103 7104}"
origin_port=${DEMO_ORIGIN_PORT:-9100}
gw_port=${DEMO_GATEWAY_PORT:-8180}
admin_port=${DEMO_ADMIN_PORT:-9190}
names=(shard-a shard-b shard-c shard-d)
host=shop.example # the Host the requests send: the cache key starts with it
products=200 # warmed in step 2, besides 12345

if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold="" plain=""; fi
say() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
die() { echo "demo: $*" >&2; exit 1; }
run() { echo "\$ $*"; "$@"; }

[ ${#vports[@]} -eq 4 ] || die "DEMO_VALKEY_PORTS needs four ports, got '${vports[*]}'"
server=$(command -v valkey-server || command -v redis-server || true)
cli=$(command -v valkey-cli || command -v redis-cli || true)
[ -n "$server" ] || die "neither valkey-server nor redis-server on PATH (make deps installs redis-server)"
[ -n "$cli" ] || die "neither valkey-cli nor redis-cli on PATH (make deps installs redis-tools)"
command -v curl >/dev/null || die "curl is needed"

# A port that answers already belongs to someone else: say so rather than
# talk to their server.
for p in "${vports[@]}" "$origin_port" "$gw_port" "$admin_port"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    die "127.0.0.1:$p is in use; pick other ports with DEMO_VALKEY_PORTS, DEMO_ORIGIN_PORT, DEMO_GATEWAY_PORT, DEMO_ADMIN_PORT"
  fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/edgecache-demo.XXXXXX")
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "${DEMO_KEEP_DIR:-}" = 1 ]; then
    echo "demo: kept $work"
  else
    rm -rf "$work"
  fi
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION COMMAND...: retry for up to 10 s.
wait_for() {
  local what=$1; shift
  for _ in $(seq 100); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what did not come up; logs are in $work (DEMO_KEEP_DIR=1 keeps them)"
}

start_node() { # index
  local i=$1 p=${vports[$1]}
  mkdir -p "$work/${names[$i]}"
  # deploy/valkey.conf, with the port, the memory budget and the working
  # directory of a small local node.
  "$server" "$root/deploy/valkey.conf" --port "$p" --maxmemory 64mb \
    --dir "$work/${names[$i]}" --logfile "$work/${names[$i]}.log" &
  pids+=($!)
  wait_for "${names[$i]} (port $p)" "$cli" -p "$p" ping
}

write_config() { # number of shards
  local n=$1 i
  {
    cat <<EOF
# edgecache config of the walkthrough, written by scripts/demo.sh.
server:
  listen: 127.0.0.1:$gw_port
admin:
  listen: 127.0.0.1:$admin_port
routes:
  - name: products
    path_prefix: /products/
    origin: http://127.0.0.1:$origin_port
    default_ttl: 5m
shards:
EOF
    for ((i = 0; i < n; i++)); do
      echo "  - { name: ${names[$i]}, addr: 127.0.0.1:${vports[$i]} }"
    done
  } >"$work/next.yaml"
  # Replace the file in one rename, as an editor saving it would.
  mv "$work/next.yaml" "$work/edgecache.yaml"
}

# holder KEY: the shard (name and port) whose node has KEY.
holder() {
  local i
  for i in "${!vports[@]}"; do
    if [ "$("$cli" -p "${vports[$i]}" EXISTS "$1" 2>/dev/null)" = 1 ]; then
      echo "${names[$i]} (127.0.0.1:${vports[$i]})"
      return
    fi
  done
  echo "none"
}

# count_keys N: how many product keys each of the first N nodes holds.
count_keys() {
  local i n=$1 line="" c
  for ((i = 0; i < n; i++)); do
    c=$("$cli" -p "${vports[$i]}" --scan --pattern "http://$host/products/*" | wc -l)
    line+="${names[$i]}=$c  "
  done
  echo "keys per shard: $line"
}

# get_products: GET every warmed product once; print how many of each
# Cache-Status came back.
get_products() {
  curl -sS --max-time 60 -H "Host: $host" -o /dev/null -w '%header{cache-status}\n' \
    "$base/products/[1-$products]" -o /dev/null "$base/products/12345" | sort | uniq -c |
    sed 's/^ */  /'
}

edgecache=$BIN/edgecache
case $edgecache in /*) ;; *) edgecache=$root/$edgecache ;; esac

say "Building"
run "$GO" build -o "$BIN/edgecache" ./cmd/edgecache
run "$GO" build -o "$BIN/demo-origin" ./examples/origin/cmd/demo-origin

say "Starting three cache nodes, the demo origin and the gateway"
echo "$(basename "$server"): deploy/valkey.conf with --maxmemory 64mb (allkeys-lru, no persistence)"
for i in 0 1 2; do
  start_node $i
  echo "  ${names[$i]} on 127.0.0.1:${vports[$i]}"
done
"$BIN/demo-origin" -listen "127.0.0.1:$origin_port" 2>"$work/origin.log" &
pids+=($!)
base=http://127.0.0.1:$gw_port
wait_for "the demo origin" curl -sf "http://127.0.0.1:$origin_port/"
echo "  demo origin on http://127.0.0.1:$origin_port (Cache-Control: public, max-age=3600)"
write_config 3
# The admin API's bearer token (a real deployment reads it from a file or a
# secret: see docs/operations.md).
export EDGECACHE_ADMIN_TOKEN=demo-$RANDOM$RANDOM
"$edgecache" serve --config "$work/edgecache.yaml" --log-format text 2>"$work/edgecache.log" &
pids+=($!)
wait_for "edgecache" curl -sf "$base/healthz"
echo "  edgecache on $base with $work/edgecache.yaml:"
sed 's/^/    /' "$work/edgecache.yaml"

say "1. GET /products/12345, three times"
key="http://$host/products/12345" # the default key: scheme://host/path?query, as Host is sent
echo "\$ curl -si -H 'Host: $host' $base/products/12345"
echo "cache key: $key"
for n in 1 2 3; do
  [ "$n" -gt 1 ] && sleep 1
  headers=$(curl -sS --max-time 10 -H "Host: $host" -D - -o /dev/null "$base/products/12345" | tr -d '\r')
  status=$(sed -n 's/^[Cc]ache-[Ss]tatus: //p' <<<"$headers")
  age=$(sed -n 's/^[Aa]ge: //p' <<<"$headers")
  printf 'request %s: Cache-Status: %-34s Age: %-3s held by: %s\n' "$n" "$status" "${age:--}" "$(holder "$key")"
done
echo "the origin sent: $(curl -sS --max-time 10 -D - -o /dev/null "http://127.0.0.1:$origin_port/products/12345" | tr -d '\r' | grep -i '^cache-control:')"
for i in 0 1 2; do
  if [ "$("$cli" -p "${vports[$i]}" EXISTS "$key")" = 1 ]; then
    ms=$("$cli" -p "${vports[$i]}" PTTL "$key")
    echo "PTTL on ${names[$i]}: $ms ms (~$((ms / 1000)) s)"
  fi
done
echo "  = max-age 3600 s fresh, plus routes[].keep (default 10m): an entry with an ETag stays"
echo "    stored after it goes stale, so the gateway can revalidate it (a 304 instead of the body)"

say "2. Warm $products more products"
get_products
count_keys 3

say "3. Plan adding shard-d"
cp "$work/edgecache.yaml" "$work/old.yaml"
write_config 4
mv "$work/edgecache.yaml" "$work/new.yaml"
cp "$work/old.yaml" "$work/edgecache.yaml" # the gateway still serves three shards
for i in $(seq 1 $products) 12345; do echo "http://$host/products/$i"; done >"$work/keys.txt"
echo "old.yaml lists shard-a..c, new.yaml adds shard-d; keys.txt holds the $((products + 1)) cached keys"
echo "\$ edgecache shardmap plan old.yaml new.yaml --keys keys.txt"
(cd "$work" && "$edgecache" shardmap plan old.yaml new.yaml --keys keys.txt) | tee "$work/plan.txt"
# The plan's share for shard-d, as a number of our keys.
planned=$(awk -v n=$((products + 1)) '$1 == "shard-d" { sub("%", "", $7); printf "%d", $7 * n / 100 + 0.5 }' "$work/plan.txt")

say "4. Start shard-d and add it to the config file"
start_node 3
echo "  shard-d on 127.0.0.1:${vports[3]}"
reloads() { grep -c "configuration reloaded" "$work/edgecache.log" || true; }
before=$(reloads)
cp "$work/new.yaml" "$work/next.yaml" && mv "$work/next.yaml" "$work/edgecache.yaml"
echo "  wrote $work/edgecache.yaml with shard-d; waiting for the gateway to reload it"
reloaded() { [ "$(reloads)" -gt "$before" ]; }
wait_for "the reload" reloaded
grep "configuration reloaded" "$work/edgecache.log" | tail -1 | sed 's/^/  gateway log: /'

say "5. Read the $((products + 1)) products again"
echo "Cache-Status of the reads (moved keys are copied from their previous owner, not fetched):"
get_products | tee "$work/reads.txt"
echo "origin fetches: $(grep -c 'fwd=' "$work/reads.txt" || true)"
count_keys 4
echo "the plan said shard-d gains $planned of these keys; it holds $("$cli" -p "${vports[3]}" --scan --pattern "http://$host/products/*" | wc -l)"
echo "(keys that moved still sit on their old shard until they expire or are evicted)"

say "6. Purge the product through the admin API"
echo "\$ curl -s -H 'Authorization: Bearer \$EDGECACHE_ADMIN_TOKEN' -d '{\"url\": \"http://$host/products/12345\"}' http://127.0.0.1:$admin_port/admin/purge"
curl -sS --max-time 10 -H "Authorization: Bearer $EDGECACHE_ADMIN_TOKEN" \
  -d "{\"url\": \"http://$host/products/12345\"}" "http://127.0.0.1:$admin_port/admin/purge"
echo
echo "cache key $key is now held by: $(holder "$key")"
status=$(curl -sS --max-time 10 -H "Host: $host" -D - -o /dev/null "$base/products/12345" | tr -d '\r' | sed -n 's/^[Cc]ache-[Ss]tatus: //p')
echo "next GET /products/12345: Cache-Status: $status"

say "Done"
echo "Everything stops now. Run it again with: make demo"
