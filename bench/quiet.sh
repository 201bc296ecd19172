#!/usr/bin/env bash
# Runs a command with any training run paused (SIGSTOP, then SIGCONT on exit, even on failure or
# Ctrl-C), one quiet command at a time (flock), so benchmarks on this 2-core machine are not timed
# against a training run or against each other. The training run continues where it was.
#
#   bench/quiet.sh deno task bench
#
# The command is killed after QUIET_MAX_S seconds (default 300), so a hung benchmark cannot keep
# training paused and every other quiet run waiting.
set -uo pipefail
exec 9>/tmp/mobilenet-quiet.lock
flock 9
pids=$(pgrep -f "^[^ ]*deno run -A model/train/train.ts" || true)
resume() { [ -n "$pids" ] && kill -CONT $pids 2>/dev/null; }
trap resume EXIT INT TERM
[ -n "$pids" ] && kill -STOP $pids && echo "quiet.sh: paused training (pid $pids)" >&2
sleep 1
timeout --kill-after=10 "${QUIET_MAX_S:-300}" "$@"
