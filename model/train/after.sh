#!/usr/bin/env bash
# Waits for the training process PID to end, then (re)starts the queue: lets queue.sh be edited
# while a run it started is still going (bash reads a running script as it goes).
#   nohup model/train/after.sh PID >> model/train/runs/queue.log 2>&1 &
cd "$(dirname "$0")/../.."
while kill -0 "$1" 2>/dev/null; do sleep 20; done
exec model/train/queue.sh
