#!/usr/bin/env bash
# Alpha 0.5 multi-resolution fine-tune, same two stages as alpha 0.25: stage 1 (batch-statistics BN,
# v1_a050_stem1_28_multires) from the single-resolution run, then stage 2 (frozen BN, this folder).
cd "$(dirname "$0")/../../../.."
export NO_COLOR=1
R=model/train/runs
COMMON=(--alpha 0.5 --plan imagenet_stem1 --resolution 28 --batch 64 --seed 1 --workers 2 --kernels own --ckpt-every 100 --resume --resolutions 14,18,21,25,28 --lr 1e-3)
deno task train --out $R/v1_a050_stem1_28_multires --init $R/v1_a050_stem1_28/model --epochs 1 "${COMMON[@]}" >> $R/v1_a050_stem1_28_multires/train.log 2>&1
deno task train --out $R/v1_a050_stem1_28_multires_fbn --init $R/v1_a050_stem1_28_multires/model --frozen-bn --bn-every 200 --epochs 1 "${COMMON[@]}" >> $R/v1_a050_stem1_28_multires_fbn/train.log 2>&1
