#!/usr/bin/env bash
# The generative-trilemma report from scratch (`make trilemma`): every model family trained on the built-in
# procedural chairs with the same step budget, then `gen3d report trilemma` on the same 60 held-out chairs.
# docs/trilemma.md explains the protocol and the figures.
#
#   scripts/trilemma.sh [OUT]            (default runs/trilemma; OUT is replaced when it holds an earlier report)
#
# Budgets (environment variables): STEPS optimiser steps of each generative network (LION's priors, PVD, the
# flow; the GAN's generator: STEPS iterations, each a discriminator and a generator step), VAE_STEPS of LION's VAE
# before its priors, GAN_SHAPES training chairs rendered for the GAN (8 views each, 32 x 32). REPORT_ARGS: more
# options of `gen3d report trilemma` (e.g. "--n 16 --no-classifier" for a quick look).
set -euo pipefail

OUT=${1:-runs/trilemma}
STEPS=${STEPS:-1000}
VAE_STEPS=${VAE_STEPS:-200}
GAN_SHAPES=${GAN_SHAPES:-128}
GEN3D=${GEN3D:-gen3d}
read -r -a REPORT <<<"${REPORT_ARGS:-}"
MARK=.gen3d-trilemma

if [[ -e "$OUT" ]]; then
    if [[ -f "$OUT/$MARK" ]]; then
        rm -rf -- "$OUT"
    elif [[ -n "$(ls -A -- "$OUT")" ]]; then
        echo "scripts/trilemma.sh: error: $OUT exists and holds no earlier trilemma run; give another folder" >&2
        exit 2
    fi
fi
mkdir -p "$OUT"
touch "$OUT/$MARK"

start=$(date +%s)
stage() {
    echo
    echo "== $1 ($(($(date +%s) - start)) s so far)"
}

# The point models train on the procedural chairs in memory (600 shapes: 480 train, 60 val, 60 test; seed 0);
# the same shapes on disk are the report's references (test) and its oracle (val).
stage "data: 600 procedural chairs"
"$GEN3D" data shapes --out "$OUT/data" --classes chair --per-class 600 --points 1536
DATA=(--data.classes '[chair]' --data.per_class 600 --data.points 1536)
NOVAL=(--trainer.limit_val_batches 0)  # no validation sampling: the report scores every model once, the same way

stage "LION: VAE $VAE_STEPS steps, then the priors $STEPS steps"
"$GEN3D" train lion --config lion_shapes --name lion --out "$OUT" --vae-steps "$VAE_STEPS" --prior-steps "$STEPS" \
    "${DATA[@]}" "${NOVAL[@]}"

stage "PVD: $STEPS steps"
"$GEN3D" train pvd --config pvd_shapes --name pvd --out "$OUT" --trainer.max_steps "$STEPS" "${DATA[@]}" "${NOVAL[@]}"

stage "point flow: $STEPS steps"
"$GEN3D" train flow --config flow_shapes --name flow --out "$OUT" --trainer.max_steps "$STEPS" "${DATA[@]}" \
    "${NOVAL[@]}"

stage "3D-aware GAN: $STEPS iterations on renders of $GAN_SHAPES training chairs"
"$GEN3D" train graf --config graf_shapes --name gan --out "$OUT" --trainer.max_steps $((2 * STEPS)) \
    --data.root "$OUT/renders" --data.classes chair --data.per_class "$GAN_SHAPES"

stage "report"
"$GEN3D" report trilemma "$OUT/lion" "$OUT/pvd" "$OUT/flow" "$OUT/gan" \
    --refs "$OUT/data/chair/test" --oracle "$OUT/data/chair/val" --out "$OUT/report" \
    ${REPORT[@]+"${REPORT[@]}"}

echo
echo "trilemma: $(($(date +%s) - start)) s in all; the report is in $OUT/report (trilemma.md, trilemma.png)"
