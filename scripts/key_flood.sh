#!/usr/bin/env bash
# What a flood of wrong automation keys from one address costs the server (issue 30): starts
# `tokenbroker serve` (one worker, pinned to core 0) on a fresh SQLite database — or on
# TB_MEASURE_POSTGRES_URL, an empty PostgreSQL database — and drives GET /api/v1/me with one
# well-formed key (valid checksum) that matches no key, from one address, with wrk on core 1.
# The first 20 answers are 401 (recorded and counted); the rest are 429. Prints wrk's summary.
#
#   scripts/key_flood.sh [path/to/tokenbroker] [seconds]     (needs wrk and taskset)
set -euo pipefail
binary="${1:-target/release/tokenbroker}"
seconds="${2:-10}"
dir=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT

# A key an attacker can mint: the right shape and checksum (CRC32, base58, 6 characters).
key=$(python3 - <<'PY'
import os, zlib
alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
def b58(data):
    n, out = int.from_bytes(data, "big"), ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out
head = "tba_live_"
body = b58(os.urandom(24))
check = b58(zlib.crc32((head + body).encode()).to_bytes(4, "big")).rjust(6, "1")
print(head + body + check)
PY
)
cat > "$dir/flood.lua" <<LUA
wrk.headers["Authorization"] = "Bearer $key"
LUA
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TB_DATABASE_URL="${TB_MEASURE_POSTGRES_URL:-sqlite://$dir/flood.db?mode=rwc}" TB_DATA_DIR="$dir" \
  TB_LISTEN="127.0.0.1:$port" TB_WORKERS=1 TB_LOG_LEVEL=warn \
  TB_KEY_ENCRYPTION_KEY=YmVuY2gta2VrLWZvci10b2tlbmJyb2tlci1iZW5jaCE= \
  taskset -c 0 "$binary" serve >/dev/null 2>"$dir/server.log" &
server=$!
for _ in $(seq 1 300); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "flood of one wrong key from one address, ${seconds}s, 32 connections: $binary"
taskset -c 1 wrk -t1 -c32 -d"${seconds}s" --latency -s "$dir/flood.lua" \
  "http://127.0.0.1:$port/api/v1/me" | grep -E "Requests/sec|Latency |50%|99%|Non-2xx"
curl -s -o /dev/null -w "a last wrong key: %{http_code}\n" -H "Authorization: Bearer $key" \
  "http://127.0.0.1:$port/api/v1/me"
