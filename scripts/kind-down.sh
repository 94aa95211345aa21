#!/usr/bin/env bash
# Delete the local kind cluster that scripts/kind-up.sh made (and everything in it).
set -euo pipefail
CLUSTER=${CLUSTER:-hlsforge}
command -v kind >/dev/null || { echo "kind-down: kind is not installed" >&2; exit 1; }
kind delete cluster --name "$CLUSTER"
