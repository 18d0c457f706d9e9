#!/usr/bin/env bash
# make run: the demo origin on 127.0.0.1:9000 and the gateway on
# 127.0.0.1:8080 with the embedded default config (or CONFIG=file).
set -euo pipefail
BIN=${BIN:-bin}
"$BIN/demo-origin" -listen 127.0.0.1:9000 &
origin=$!
trap 'kill $origin 2>/dev/null || true' EXIT
cat <<'MSG'

edgecache is starting on http://127.0.0.1:8080 in front of the demo origin (http://127.0.0.1:9000).
Try, in another terminal:

  curl -si http://127.0.0.1:8080/products/12345      # first time:  Cache-Status: edgecache; fwd=uri-miss; stored
  curl -si http://127.0.0.1:8080/products/12345      # then:        Cache-Status: edgecache; hit; detail=l1
  curl -sI http://127.0.0.1:8080/products/12345      # HEAD from the cache
  curl -si -X PUT 'http://127.0.0.1:8080/products/12345?price=9.99'   # proxied: fwd=bypass

Ctrl-C stops both.

MSG
args=(serve --log-format text)
[ -n "${CONFIG:-}" ] && args+=(--config "$CONFIG")
"$BIN/edgecache" "${args[@]}"
