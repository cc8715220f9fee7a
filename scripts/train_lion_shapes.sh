#!/usr/bin/env bash
# LION on the built-in procedural shapes, on a CPU (gen3d/configs/lion_shapes.yaml): both stages, then samples.
# Usage: scripts/train_lion_shapes.sh [more LightningCLI flags, e.g. --trainer.max_steps 200]
set -euo pipefail
gen3d train lion --config gen3d/configs/lion_shapes.yaml --name lion_shapes --stage all "$@"
gen3d sample --ckpt runs/lion_shapes/prior/checkpoints/last.ckpt --n 16 --sampler dpm --steps 20 \
  --out runs/lion_shapes/samples
