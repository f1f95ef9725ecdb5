#!/usr/bin/env bash
# Serve a fresh embedded instance on 127.0.0.1 and load it with scripts/loadgen.py:
# SubmitApplication alone, then the hospital day. The JSON results and the text reports
# go to OUT (default ./bench-out). Stops the server it started, by its pid.
#
#   scripts/bench_serve.sh [--seconds 20] [--out DIR] [-- serve options, e.g. --workers 2 --deliverers 0]
#
# Run from the repository with its .venv (make serve or make test creates it).
set -euo pipefail
SECONDS_LOAD=20
OUT=bench-out
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_LOAD=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --) shift; break ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-$ROOT/.venv/bin/python}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
DATA=$(mktemp -d /tmp/his-pacs-bench-XXXXXX)
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export HIS_PACS_DATA_DIR=$DATA
cli() { (cd "$ROOT" && "$PY" -m his_pacs_ws.cli "$@"); }
cli migrate > "$OUT/setup.log" 2>&1
HIS_PASSWORD=bench-his-$RANDOM$RANDOM
PACS_PASSWORD=bench-pacs-$RANDOM$RANDOM
printf '%s' "$HIS_PASSWORD" | cli systems add bench-his --role HIS --password-stdin >> "$OUT/setup.log" 2>&1
printf '%s' "$PACS_PASSWORD" | cli systems add bench-pacs --role PACS --password-stdin >> "$OUT/setup.log" 2>&1
(cd "$ROOT" && exec "$PY" -m his_pacs_ws.cli serve --host 127.0.0.1 --port "$PORT" "$@") > "$OUT/serve.log" 2>&1 &
SERVE=$!
cleanup() {
    kill "$SERVE" 2>/dev/null || true
    wait "$SERVE" 2>/dev/null || true
    rm -rf "$DATA"
}
trap cleanup EXIT
for _ in $(seq 1 120); do
    curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
    sleep 0.5
done
export HIS_PACS_HIS_USER=bench-his HIS_PACS_HIS_PASSWORD=$HIS_PASSWORD
export HIS_PACS_PACS_USER=bench-pacs HIS_PACS_PACS_PASSWORD=$PACS_PASSWORD
for scenario in submit day; do
    "$PY" "$ROOT/scripts/loadgen.py" --url "http://127.0.0.1:$PORT" --scenario "$scenario" --connections 8 \
        --seconds "$SECONDS_LOAD" --service-pid "$SERVE" --pgdata "$DATA/pgdata" \
        --label "serve $*" --out "$OUT/$scenario.json" | tee "$OUT/$scenario.txt"
done
