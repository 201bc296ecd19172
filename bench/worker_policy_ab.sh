#!/usr/bin/env bash
# A/B of the inference workers' Linux scheduling policy on one running server: SCHED_OTHER (nice
# WORKER_NICE, as shipped) against SCHED_IDLE (which any waking normal thread preempts at once),
# set from outside with util-linux's `chrt` on the worker threads, alternating, ROUNDS rounds of
# `deno task loadtest` closed loop (c=32) and --overload against the same server. Linux only; run
# it inside bench/quiet.sh:
#
#   bench/quiet.sh bench/worker_policy_ab.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8377}
ROUNDS=${ROUNDS:-2}
HOST=127.0.0.1 PORT=$PORT deno run -A main.ts >/dev/null 2>&1 &
SP=$!
trap 'kill -TERM $SP 2>/dev/null; wait $SP 2>/dev/null || true' EXIT
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 1; done
tids() {
  for t in /proc/$SP/task/*; do
    case "$(cat "$t/comm" 2>/dev/null)" in worker-*) echo "${t##*/}" ;; esac
  done
}
for round in $(seq 1 "$ROUNDS"); do
  for pol in other idle; do
    for t in $(tids); do chrt "--$pol" -p 0 "$t"; done
    echo "round $round, workers SCHED_${pol^^}: $(for t in $(tids); do chrt -p "$t" | head -1 | sed 's/.*: //'; done | sort | uniq -c | xargs)"
    deno run -A bench/loadtest.ts --url "http://127.0.0.1:$PORT" --concurrency 32 --alpha 0.25 \
      --duration 5 --no-write 2>&1 | grep '^own\|rror'
    deno run -A bench/loadtest.ts --url "http://127.0.0.1:$PORT" --overload --alpha 0.25 \
      --duration 5 --no-write 2>&1 | grep '^{\|rror'
  done
done
