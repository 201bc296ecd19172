#!/usr/bin/env bash
# Stage 2 of the alpha 0.25 multi-resolution fine-tune: frozen BN (moving statistics re-estimated on the
# resolution mix every 200 steps), from stage 1 (v1_a025_stem1_28_multires, batch-statistics BN), whose
# mixed BN statistics left beta 0.5 (14x14) at 12.7% although BN re-estimated at 14 alone gave 69.7%.
cd "$(dirname "$0")/../../../.."
NO_COLOR=1 nohup deno task train --out model/train/runs/v1_a025_stem1_28_multires_fbn --init model/train/runs/v1_a025_stem1_28_multires/model --resolutions 14,18,21,25,28 --frozen-bn --bn-every 200 --lr 1e-3 --alpha 0.25 --plan imagenet_stem1 --resolution 28 --epochs 3 --batch 64 --seed 1 --workers 2 --kernels own --ckpt-every 100 --resume >> model/train/runs/v1_a025_stem1_28_multires_fbn/train.log 2>&1 &
