#!/usr/bin/env bash
# The training queue: one run at a time (2 cores), each resumed from its checkpoint, so rerunning
# this script after an interruption continues where it stopped; finished runs return at once.
# Raise an --epochs budget to train a run further (it resumes at its last finished epoch).
#
#   nohup model/train/queue.sh > model/train/runs/queue.log 2>&1 &
set -euo pipefail
cd "$(dirname "$0")/../.."
export NO_COLOR=1

run() {
  local name=$1
  shift
  local out=model/train/runs/$name
  mkdir -p "$out"
  echo "$(date -u +%FT%TZ) start $name: $*"
  deno task train --out "$out" --resume --kernels own --workers 2 --ckpt-every 100 "$@" >>"$out/train.log" 2>&1
  echo "$(date -u +%FT%TZ) done $name"
}

COMMON=(--plan imagenet_stem1 --resolution 28 --batch 64 --seed 1)
run v1_a025_stem1_28 --alpha 0.25 --epochs "${EPOCHS_025:-3}" "${COMMON[@]}"
run v1_a050_stem1_28 --alpha 0.5 --epochs "${EPOCHS_050:-1}" "${COMMON[@]}"
run v1_a075_stem1_28 --alpha 0.75 --epochs "${EPOCHS_075:-1}" "${COMMON[@]}"
run v1_a100_stem1_28 --alpha 1.0 --epochs "${EPOCHS_100:-1}" "${COMMON[@]}"
# The seed's cifar plan at 32x32 (Fashion-MNIST padded 28 -> 32; ~4x the multiply-adds of the
# plan above), to compare accuracy per training hour.
run v1_a025_cifar_32 --alpha 0.25 --epochs "${EPOCHS_025_CIFAR:-1}" --plan cifar --resolution 32 --batch 64 --seed 1
