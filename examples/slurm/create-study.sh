#!/usr/bin/env bash
# Run once, on a login node: scans the data, freezes the split and creates the study on the shared
# PostgreSQL server. Everything the workers need is then in the study and in its folder.
#   STORAGE='postgresql://lepidopt:PASSWORD@db.cluster/lepidopt' bash create-study.sh
set -euo pipefail
: "${STORAGE:?set STORAGE to the PostgreSQL URL}"
RESULTS=${RESULTS:-/shared/lepidopt/results}   # on a filesystem every node mounts
lepidopt search --study ethec-family --storage "$STORAGE" --results-dir "$RESULTS" \
    --data /shared/data/ETHEC/train.json --val-manifest /shared/data/ETHEC/val.json \
    --test-manifest /shared/data/ETHEC/test.json --image-root /shared/data/ETHEC/images \
    --space resnet50 --n-trials 400 --create-only
