#!/usr/bin/env bash
# hlsforge on a local kind cluster, from scratch or again after changes:
# create the cluster (kind-config.yaml), build the three images, load them into the node,
# `helm upgrade --install` with the kind values, wait until everything is ready, print the URL.
#
# Needs docker, kind, kubectl and helm (or .venv/bin/helm from `make setup`).
#   CLUSTER=hlsforge RELEASE=hlsforge NAMESPACE=hlsforge TAG=dev scripts/kind-up.sh [helm args...]
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-hlsforge}
RELEASE=${RELEASE:-hlsforge}
NAMESPACE=${NAMESPACE:-hlsforge}
TAG=${TAG:-dev}
HELM=${HELM:-$(command -v helm || echo .venv/bin/helm)}

for tool in docker kind kubectl "$HELM"; do
  command -v "$tool" >/dev/null || { echo "kind-up: $tool is not installed (helm: make setup)" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "kind-up: the Docker daemon is not reachable" >&2; exit 1; }

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  echo "== kind cluster $CLUSTER exists"
else
  echo "== creating kind cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" --config kind-config.yaml --wait 120s
fi
kubectl config use-context "kind-$CLUSTER" >/dev/null

echo "== building images (tag $TAG)"
for image in api:api/Dockerfile operator:operator/Dockerfile transcoder:images/transcoder/Dockerfile; do
  name=${image%%:*} dockerfile=${image#*:}
  docker build --file "$dockerfile" --tag "hlsforge/$name:$TAG" .
done

echo "== loading images into the node"
kind load docker-image --name "$CLUSTER" \
  "hlsforge/api:$TAG" "hlsforge/operator:$TAG" "hlsforge/transcoder:$TAG"

echo "== installing the chart"
# The namespace enforces the "restricted" Pod Security Standard: every pod of the chart and
# every transcoder Job must pass it.
kubectl create namespace "$NAMESPACE" --dry-run=client --output yaml | kubectl apply --filename - >/dev/null
kubectl label --overwrite namespace "$NAMESPACE" \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
# The image IDs as pod annotations: a rebuilt image under the same tag rolls the pods.
image_id() { docker image inspect --format '{{.Id}}' "hlsforge/$1:$TAG" | cut -c8-19; }
"$HELM" upgrade --install "$RELEASE" charts/hlsforge \
  --namespace "$NAMESPACE" \
  --values charts/hlsforge/values-kind.yaml \
  --set "images.api.tag=$TAG,images.operator.tag=$TAG,images.transcoder.tag=$TAG" \
  --set-string "api.podAnnotations.hlsforge\.dev/image=$(image_id api)" \
  --set-string "operator.podAnnotations.hlsforge\.dev/image=$(image_id operator)" \
  --wait --timeout 10m "$@"

for _ in $(seq 60); do
  curl -fsS http://localhost:8000/readyz >/dev/null 2>&1 && break
  echo "waiting for http://localhost:8000/readyz"; sleep 2
done
curl -fsS http://localhost:8000/readyz >/dev/null \
  || { echo "kind-up: the API does not answer on http://localhost:8000/readyz" >&2; exit 1; }
cat <<MSG

hlsforge is ready:  http://localhost:8000/
  S3 (MinIO):       http://localhost:9000  (the application's keys, limited to its two buckets:
                    kubectl -n $NAMESPACE get secret -l app.kubernetes.io/component=s3 -o yaml)
  Resources:        kubectl -n $NAMESPACE get videotranscodes -w
  End-to-end test:  .venv/bin/pytest tests/e2e --with-e2e
  Tear down:        make cluster-down
MSG
