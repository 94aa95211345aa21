"""Rendering the Helm chart for the deploy tests: helm, value sets, rendered documents."""

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "hlsforge"
RELEASE = "media"
NAMESPACE = "hlsforge-test"

VALUE_SETS: dict[str, list[Path]] = {
    "defaults": [],
    "kind": [CHART / "values-kind.yaml"],
    **{path.name.removesuffix("-values.yaml"): [path] for path in sorted(CHART.glob("ci/*.yaml"))},
}

Manifest = dict[str, Any]


def find_helm() -> str:
    """`helm` on PATH, else the one `make setup` puts beside the venv's Python."""
    found = shutil.which("helm") or shutil.which("helm", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("helm is not installed: run `make setup` (scripts/install-kube-tools.sh)")
    return found


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    # No cluster: an empty kubeconfig keeps helm from reading the developer's own.
    env = {**os.environ, "KUBECONFIG": os.devnull, "HELM_CACHE_HOME": "/tmp/hlsforge-helm-cache"}
    return subprocess.run(
        [helm, *args], capture_output=True, text=True, check=False, timeout=120, env=env
    )


def values_args(files: list[Path], sets: dict[str, str] | None = None) -> list[str]:
    args = [arg for path in files for arg in ("--values", str(path))]
    for key, value in (sets or {}).items():
        args += ["--set", f"{key}={value}"]
    return args


@dataclass
class Rendered:
    """The documents of one `helm template` run."""

    name: str
    documents: list[Manifest]

    def of_kind(self, *kinds: str) -> list[Manifest]:
        return [doc for doc in self.documents if doc["kind"] in kinds]

    def get(self, kind: str, name: str) -> Manifest:
        for doc in self.of_kind(kind):
            if doc["metadata"]["name"] == name:
                return doc
        raise AssertionError(f"no {kind} {name} in {self.name}: {self.names()}")

    def names(self) -> list[str]:
        return [f"{doc['kind']}/{doc['metadata']['name']}" for doc in self.documents]

    def by_component(self, kind: str, component: str) -> Manifest:
        (doc,) = [
            doc
            for doc in self.of_kind(kind)
            if doc["metadata"]["labels"].get("app.kubernetes.io/component") == component
        ]
        return doc

    def pod_specs(self) -> Iterator[tuple[str, Manifest]]:
        """(workload name, pod spec) of every Deployment, StatefulSet and Job."""
        for doc in self.of_kind("Deployment", "StatefulSet", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]

    def secret_data(self, name: str) -> dict[str, str] | None:
        """A rendered Secret's values, decoded; None when the chart does not render it."""
        for doc in self.of_kind("Secret"):
            if doc["metadata"]["name"] == name:
                return {k: base64.b64decode(v).decode() for k, v in doc.get("data", {}).items()}
        return None


def render(helm: str, name: str, files: list[Path], sets: dict[str, str] | None = None) -> Rendered:
    result = run_helm(
        helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
        *values_args(files, sets),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return Rendered(name, documents)


def _strict(schema: Any) -> Any:
    """Undeclared fields are errors (as with `kubectl apply`'s strict field validation)."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if "properties" in schema and "additionalProperties" not in schema:
        strict["additionalProperties"] = False
    return strict


def crd_errors(crd: Manifest, resource: Manifest) -> list[str]:
    """Where `resource` breaks the CRD's openAPIV3Schema (metadata is the apiserver's job)."""
    (version,) = [v for v in crd["spec"]["versions"] if v["storage"]]
    group = crd["spec"]["group"]
    errors = []
    if resource.get("apiVersion") != f"{group}/{version['name']}":
        errors.append(f"apiVersion {resource.get('apiVersion')}")
    if resource.get("kind") != crd["spec"]["names"]["kind"]:
        errors.append(f"kind {resource.get('kind')}")
    schema = _strict(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for error in validator.iter_errors(resource):
        errors.append(f"{'.'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}")
    return errors
