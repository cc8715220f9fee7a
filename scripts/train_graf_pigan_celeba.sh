#!/usr/bin/env bash
# Train pi-GAN (SIREN + FiLM field in gen3d's GRAF trainer) with gen3d/configs/pigan_celeba.yaml.
# Extra arguments are LightningCLI overrides, e.g. --trainer.max_steps 2000.
set -euo pipefail
exec gen3d train graf --config gen3d/configs/pigan_celeba.yaml "$@"
