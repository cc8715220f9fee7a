#!/usr/bin/env bash
# LION on ShapeNetCore.v2.PC15k chair with LION's published hyperparameters (gen3d/configs/lion_chair.yaml).
# Usage: scripts/train_lion_chair.sh [NUM_GPUS] [more LightningCLI flags, e.g. --trainer.precision bf16-mixed]
# Data: datasets/shapenet_pc15k/data (see datasets/shapenet_pc15k.md). Outputs: runs/lion_chair/{vae,prior}/.
# Resume an interrupted run by adding --resume (each stage continues from its last.ckpt).
set -euo pipefail
NGPU="${1:-1}"
shift || true
STRATEGY=auto
if [ "$NGPU" -gt 1 ]; then STRATEGY=ddp; fi
for STAGE in vae prior; do
  gen3d train lion --config gen3d/configs/lion_chair.yaml --name lion_chair --stage "$STAGE" \
    --trainer.devices "$NGPU" --trainer.strategy "$STRATEGY" "$@"
done
gen3d sample --ckpt runs/lion_chair/prior/checkpoints/last.ckpt --n 64 --sampler ddim --steps 50 \
  --out runs/lion_chair/samples
