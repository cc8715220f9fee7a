#!/usr/bin/env bash
# Train pi-GAN (SIREN + FiLM field in gen3d's GRAF trainer) with gen3d/configs/pigan_celeba.yaml.
# Extra arguments are LightningCLI overrides, e.g. --trainer.max_steps 2000.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
exec "$PY" -m gen3d.lit.graf_module fit --config gen3d/configs/pigan_celeba.yaml "$@"
