"""The chart as Helm and Kubernetes see it: lint, schema-valid manifests, values schema, CRD."""

import json
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from deploy.chart import (
    CHART,
    NAMESPACE,
    RELEASE,
    ROOT,
    VALUE_SETS,
    Rendered,
    crd_errors,
    render,
    run_helm,
    values_args,
)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest
# kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.latest_version()]


def test_chart_is_helm_v2_for_helm_3_and_4() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["kubeVersion"] == ">=1.29.0-0"
    assert chart["appVersion"] == chart["version"]


def test_chart_crd_is_byte_equal_to_crds_dir() -> None:
    copies = sorted(path.name for path in (CHART / "crds").iterdir())
    assert copies == sorted(path.name for path in (ROOT / "crds").iterdir())
    for name in copies:
        chart_copy = (CHART / "crds" / name).read_bytes()
        assert chart_copy == (ROOT / "crds" / name).read_bytes(), (
            f"charts/hlsforge/crds/{name} differs from crds/{name}: run `make crd`"
        )


@pytest.mark.parametrize("value_set", list(VALUE_SETS))
def test_helm_lint_strict(helm: str, value_set: str) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART), *values_args(VALUE_SETS[value_set]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout, result.stdout
    assert "[ERROR]" not in result.stdout, result.stdout


def test_every_optional_feature_is_switched_both_ways() -> None:
    """The value sets between them turn each switch on and off."""
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    switches = {
        "mongodb.enabled", "minio.enabled", "redis.enabled", "networkPolicy.enabled",
        "operator.clusterWide", "api.ingress.enabled", "minio.ingress.enabled",
        "mongodb.persistence.enabled", "minio.persistence.enabled",
    }  # fmt: skip
    seen: dict[str, set[bool]] = {switch: set() for switch in switches}
    for files in VALUE_SETS.values():
        values = defaults
        for path in files:
            values = _merge(values, yaml.safe_load(path.read_text()))
        for switch in switches:
            node: Any = values
            for key in switch.split("."):
                node = node[key]
            seen[switch].add(node)
    assert seen == {switch: {True, False} for switch in switches}


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in override.items()}}
    return override


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_manifests_are_valid_kubernetes_objects(rendered: Rendered, version: str) -> None:
    """kubernetes-validate --strict: every built-in kind, unknown fields included."""
    failures = []
    for document in rendered.documents:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(map(str, error.path))
            failures.append(f"{document['kind']}/{document['metadata']['name']} {path}: {error}")
        except kubernetes_validate.SchemaNotFoundError:
            failures.append(f"{document['kind']} is not a built-in kind")
    assert failures == []


def test_kubernetes_validate_catches_an_unknown_field(rendered: Rendered) -> None:
    """The check above is strict, not a no-op."""
    deployment = json.loads(json.dumps(rendered.of_kind("Deployment")[0]))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContexts"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_the_chart_renders_no_custom_resource_and_no_crd(rendered: Rendered) -> None:
    """The CRD comes from the chart's crds/ directory (installed first, never templated)."""
    groups = {doc["apiVersion"].split("/")[0] for doc in rendered.documents}
    assert "hlsforge.dev" not in groups
    assert not rendered.of_kind("CustomResourceDefinition")


def test_the_example_matches_the_crd(crd: dict[str, Any]) -> None:
    example = yaml.safe_load((ROOT / "examples" / "videotranscode.yaml").read_text())
    assert crd_errors(crd, example) == []


def test_the_crd_check_rejects_a_broken_resource(crd: dict[str, Any]) -> None:
    example = yaml.safe_load((ROOT / "examples" / "videotranscode.yaml").read_text())
    example["spec"]["segmentType"] = "dash"
    example["spec"]["output"]["bucketName"] = "x"
    del example["spec"]["source"]
    errors = crd_errors(crd, example)
    assert any(error.startswith("spec.segmentType") for error in errors), errors
    assert any("bucketName" in error for error in errors), errors
    assert any("'source' is a required property" in error for error in errors), errors


def install_dry_run(helm: str, files: list[Path]) -> dict[str, Any]:
    """`helm install --dry-run=client`: what `helm template` shows, plus hooks and NOTES."""
    result = run_helm(
        helm, "install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client",
        "--output", "json", *values_args(files),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    release: dict[str, Any] = json.loads(result.stdout)
    return release


@pytest.mark.parametrize("value_set", ["defaults", "kind", "external-services"])
def test_notes_tell_how_to_open_the_app_and_apply_a_valid_sample(
    helm: str, value_set: str, crd: dict[str, Any]
) -> None:
    notes: str = install_dry_run(helm, VALUE_SETS[value_set])["info"]["notes"]
    assert "Open the web app" in notes
    if value_set == "kind":
        assert "http://localhost:8000/" in notes
        assert "WARNING" not in notes  # the public S3 endpoint is set
    if value_set == "defaults":
        assert f"port-forward service/{RELEASE}-hlsforge-api 8000:8000" in notes
    sample_text = notes.split("<<'YAML'\n", 1)[1].split("\nYAML\n", 1)[0]
    sample = yaml.safe_load(sample_text)
    assert crd_errors(crd, sample) == []
    assert sample["metadata"]["namespace"] == NAMESPACE


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"mongodb.enabled": "yes"}, "/mongodb/enabled"),
        ({"mongodb.enabeld": "true"}, "enabeld"),
        ({"operator.maxRunningJobs": "0"}, "/operator/maxRunningJobs"),
        ({"images.api.pullPolicy": "Sometimes"}, "/images/api/pullPolicy"),
        ({"api.service.type": "ExternalName"}, "/api/service/type"),
        ({"api.service.nodePort": "8000"}, "/api/service/nodePort"),
        ({"s3.uploadBucket": "Uploads_Bucket"}, "/s3/uploadBucket"),
        ({"s3.publicEndpoint": "localhost:9000"}, "/s3/publicEndpoint"),
        ({"api.resources.limits": "null"}, "/api/resources"),
        ({"api.corsOrigins[0]": "*"}, "/api/corsOrigins/0"),
        ({"mongodb.image.tag": ""}, "/mongodb/image/tag"),
        ({"api.transcodePriority": "5000"}, "/api/transcodePriority"),
        ({"api.replicas": "0"}, "/api/replicas"),
        ({"operator.replicas": "0"}, "/operator/replicas"),
        ({"redis.url": "redis.example.net:6379"}, "/redis/url"),
        ({"redis.image.tag": ""}, "/redis/image/tag"),
        ({"redis.existingSecret": "Acme_Redis"}, "/redis/existingSecret"),
        ({"operator.bindAddress": ""}, "/operator/bindAddress"),
    ],
)
def test_values_schema_rejects(helm: str, sets: dict[str, str], message: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), *values_args([], sets))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            {"mongodb.enabled": "false"},
            "set mongodb.external.uri or mongodb.external.existingSecret",
        ),
        ({"minio.enabled": "false"}, "set s3.existingSecret"),
        ({"s3.accessKeyId": "AKIA", "s3.secretAccessKey": "x"}, "are for an external S3"),
        (
            {"redis.enabled": "false"},
            "api.replicas is 2: the API replicas share Socket.IO events over Redis: keep "
            "redis.enabled, or set redis.url or redis.existingSecret (or api.replicas: 1)",
        ),
        ({"redis.url": "redis://:pw@redis:6379/0"}, "are for an external Redis"),
        ({"redis.existingSecret": "acme-redis"}, "are for an external Redis"),
    ],
)
def test_incomplete_values_fail_with_a_clear_message(
    helm: str, sets: dict[str, str], message: str
) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), *values_args([], sets))
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_a_long_release_name_keeps_names_short(helm: str) -> None:
    result = run_helm(helm, "template", "a" * 53, str(CHART))  # Helm's longest release name
    assert result.returncode == 0, result.stderr
    for document in yaml.safe_load_all(result.stdout):
        if document:
            assert len(document["metadata"]["name"]) <= 63
            if document["kind"] == "StatefulSet":
                assert len(document["metadata"]["name"]) <= 52  # controller-revision-hash label


def test_an_external_redis_comes_from_a_secret_and_renders_no_redis(helm: str) -> None:
    url = "redis://:not-a-real-password@redis.example.net:6379/2"
    rendered = render(helm, "external-redis", [], {"redis.enabled": "false", "redis.url": url})
    name = f"{RELEASE}-hlsforge"
    redis_objects = [
        doc["kind"] for doc in rendered.documents
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "redis"
    ]  # fmt: skip
    assert redis_objects == ["Secret"]
    assert rendered.secret_data(f"{name}-redis-url") == {"url": url}
    assert rendered.secret_data(f"{name}-redis") is None
    api = rendered.get("Deployment", f"{name}-api")
    (entry,) = [
        e for e in api["spec"]["template"]["spec"]["containers"][0]["env"]
        if e["name"] == "HLSFORGE_REDIS_URL"
    ]  # fmt: skip
    assert entry["valueFrom"] == {"secretKeyRef": {"name": f"{name}-redis-url", "key": "url"}}
    assert api["spec"]["replicas"] == 2


def test_one_api_replica_runs_without_redis_and_without_a_disruption_budget(helm: str) -> None:
    rendered = render(helm, "no-redis", [], {"redis.enabled": "false", "api.replicas": "1"})
    assert not [
        doc for doc in rendered.documents
        if doc["metadata"]["labels"].get("app.kubernetes.io/component") == "redis"
    ]  # fmt: skip
    assert rendered.of_kind("PodDisruptionBudget") == []
    api = rendered.get("Deployment", f"{RELEASE}-hlsforge-api")
    env = api["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "HLSFORGE_REDIS_URL" not in {e["name"] for e in env}
    # One replica has no budget with the built-in Redis either (for one pod it would do nothing).
    single = render(helm, "one-replica", [], {"api.replicas": "1"})
    assert single.of_kind("PodDisruptionBudget") == []
    assert single.get("StatefulSet", f"{RELEASE}-hlsforge-redis")
