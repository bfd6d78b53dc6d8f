#!/usr/bin/env bash
# One short density-model training session on a lent GPU machine (the device tool's `run`),
# started from the committed checkpoint; the run's folder (log, last.pt, best.pt,
# best_state.pt) comes back under $OUT/run, and the CPU run here resumes from it
# (`train --resume` with it as OUT/last.pt).
#
# Prepared here (models/training/README.md, "On a lent GPU", has the whole sequence):
#   tar cf - -C ../shared/data shanghaitech beijing_brt/train pets2009_vtest |
#       split -b 36m - .pack/data.tar.          # ~120 MB in 4 parts: one carried per call
#   pip download ... -d .whl pydantic pydantic-core annotated-types typing-inspection
#       shapely sqlalchemy                      # the exact command is in that README
# The data is not re-encoded to travel smaller: the model's count follows JPEG artefacts
# (benchmarks/density_robustness.py: ShanghaiTech B validation bias -7.0 as they are, -1.3 at q60).
# Then, on the device, after the parts have arrived:
#   bash crowdwatch/training/device_train.sh [train.py options]
# Environment: DEVICE (cuda), MINUTES (8: training time before it saves and stops), OUT ($OUT),
# CROWDWATCH_DATA (unpacked from .pack/data.tar.* when unset), INIT (the committed checkpoint),
# PYTHON (python3: the device's, which holds torch, numpy, OpenCV, SciPy and PyYAML).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEVICE=${DEVICE:-cuda}
MINUTES=${MINUTES:-8}
OUT=${OUT:-/tmp/out}
INIT=${INIT:-models/training/density_last.pt}
if [ -z "${CROWDWATCH_DATA:-}" ]; then
    mkdir -p /tmp/crowdwatch-data
    cat .pack/data.tar.* | tar xf - -C /tmp/crowdwatch-data
    export CROWDWATCH_DATA=/tmp/crowdwatch-data
fi
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
mkdir -p "$OUT/run"
PYTHON=${PYTHON:-python3}
"$PYTHON" -m crowdwatch.training.train --out "$OUT/run" --resume --init-from "$INIT" \
    --device "$DEVICE" --max-minutes "$MINUTES" --save-every-s 60 "$@" 2>&1 | tee "$OUT/run/train.log"
