#!/usr/bin/env bash
# Train GRAF with gen3d/configs/graf_carla.yaml. Extra arguments are LightningCLI overrides, e.g.
#   scripts/train_graf_carla.sh --trainer.max_steps 2000 --trainer.devices 1
# Resume: scripts/train_graf_carla.sh --resume  # continues runs/graf_carla/checkpoints/last.ckpt
set -euo pipefail
exec gen3d train graf --config gen3d/configs/graf_carla.yaml "$@"
