#!/usr/bin/env bash
# Multi-resolution fine-tune of v1_a025_stem1_28 (issue 3: one file must serve every beta).
# 14/21/25/28 are the sides of the evaluated betas 0.5/0.75/0.875/1 (round(beta*28); 24.5 -> 25), 18 in between.
cd "$(dirname "$0")/../../../.."
NO_COLOR=1 nohup deno task train --out model/train/runs/v1_a025_stem1_28_multires --init model/train/runs/v1_a025_stem1_28/model --resolutions 14,18,21,25,28 --lr 1e-3 --alpha 0.25 --plan imagenet_stem1 --resolution 28 --epochs 1 --batch 64 --seed 1 --workers 2 --kernels own --ckpt-every 100 --resume >> model/train/runs/v1_a025_stem1_28_multires/train.log 2>&1 &
