#!/usr/bin/env bash
# LION on one ShapeNetCore.v2.PC15k class with LION's published hyperparameters (gen3d/configs/lion_<class>.yaml).
# Usage: scripts/train_lion_shapenet.sh CLASS [NUM_GPUS] [more LightningCLI flags, e.g. --trainer.precision bf16-mixed]
#   CLASS: airplane, car or chair (the classes with a preset).
# Data: datasets/shapenet_pc15k/data (see datasets/shapenet_pc15k.md). Outputs: runs/lion_<class>/{vae,prior}/.
# Resume an interrupted run by adding --resume (each stage continues from its last.ckpt).
# Each stage runs in its own process, so multi-GPU DDP workers re-run only that stage.
set -euo pipefail
CLASS="${1:?usage: scripts/train_lion_shapenet.sh CLASS [NUM_GPUS] [LightningCLI flags]}"
CONFIG="gen3d/configs/lion_${CLASS}.yaml"
if [ ! -f "$CONFIG" ]; then echo "no preset $CONFIG (classes: airplane, car, chair)" >&2; exit 2; fi
NGPU="${2:-1}"
shift 2 || shift $#
STRATEGY=auto
if [ "$NGPU" -gt 1 ]; then STRATEGY=ddp; fi
for STAGE in vae prior; do
  gen3d train lion --config "$CONFIG" --name "lion_${CLASS}" --stage "$STAGE" \
    --trainer.devices "$NGPU" --trainer.strategy "$STRATEGY" "$@"
done
gen3d sample --ckpt "runs/lion_${CLASS}/prior/checkpoints/last.ckpt" --n 64 --sampler ddim --steps 50 \
  --out "runs/lion_${CLASS}/samples"
