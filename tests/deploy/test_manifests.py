"""What the rendered manifests promise: locked-down pods, least-privilege RBAC, secrets only by
reference, NetworkPolicies, and the environment each deployable's settings class expects."""

import json
import os
import re
from collections.abc import Callable, Iterator

import pytest
import yaml
from deploy.chart import NAMESPACE, RELEASE, ROOT, VALUE_SETS, Manifest, Rendered
from pydantic import SecretStr

from transcode_api.settings import ApiSettings
from transcode_operator.settings import OperatorSettings

NON_WORKLOAD_SECRETS = {"kubernetes.io/tls", "kubernetes.io/dockerconfigjson"}
CREDENTIAL_NAME = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|_URI$|CREDENTIAL", re.IGNORECASE)
NOT_CREDENTIALS = {"HLSFORGE_JOB__S3_SECRET_NAME"}  # names a Secret, holds none

RenderSet = Callable[[str], Rendered]
WITH_POLICIES = [name for name in VALUE_SETS if name != "minimal"]
BUILTIN_MONGODB = ["defaults", "kind", "cluster-wide", "ingress", "minimal"]


def containers(pod: Manifest) -> Iterator[Manifest]:
    yield from pod.get("initContainers", [])
    yield from pod["containers"]


def fullname(rendered: Rendered) -> str:
    name: str = rendered.by_component("Deployment", "api")["metadata"]["name"]
    return name.removesuffix("-api")


# --- pods -------------------------------------------------------------------------------------


def test_pods_are_unprivileged_and_locked_down(rendered: Rendered) -> None:
    for workload, pod in rendered.pod_specs():
        for host_namespace in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(host_namespace), workload
        assert all("hostPath" not in volume for volume in pod.get("volumes", [])), workload
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, workload
        assert context["runAsUser"] != 0, workload
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, workload
        for container in containers(pod):
            where = f"{workload} {container['name']}"
            security = container["securityContext"]
            assert security.get("privileged", False) is False, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["runAsNonRoot"] is True, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where


def test_every_container_has_requests_and_limits(rendered: Rendered) -> None:
    for workload, pod in rendered.pod_specs():
        for container in containers(pod):
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources[kind]), f"{workload} {kind}"


def test_long_running_containers_have_probes_on_declared_ports(rendered: Rendered) -> None:
    for doc in rendered.of_kind("Deployment", "StatefulSet"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            ports = {port["name"] for port in container["ports"]}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                action = container[probe].get("httpGet") or container[probe]["tcpSocket"]
                assert action["port"] in ports, f"{doc['metadata']['name']} {probe}"


def test_only_api_and_operator_get_kubernetes_credentials(rendered: Rendered) -> None:
    name = fullname(rendered)
    for workload, pod in rendered.pod_specs():
        if workload in {f"Deployment/{name}-api", f"Deployment/{name}-operator"}:
            assert pod["automountServiceAccountToken"] is True
            assert pod["serviceAccountName"] == workload.split("/")[1]
        else:
            assert pod["automountServiceAccountToken"] is False, workload


def test_operator_is_one_replica_replaced_not_rolled(rendered: Rendered) -> None:
    operator = rendered.by_component("Deployment", "operator")
    assert operator["spec"]["replicas"] == 1
    assert operator["spec"]["strategy"] == {"type": "Recreate"}
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "healthz": 8080,
        "metrics": 9090,
    }


def test_images_come_from_values(rendered: Rendered) -> None:
    tag = "dev" if rendered.name == "kind" else "0.1.0"
    api = rendered.by_component("Deployment", "api")["spec"]["template"]["spec"]
    operator = rendered.by_component("Deployment", "operator")["spec"]["template"]["spec"]
    assert api["containers"][0]["image"] == f"hlsforge/api:{tag}"
    assert operator["containers"][0]["image"] == f"hlsforge/operator:{tag}"
    env = {e["name"]: e.get("value") for e in operator["containers"][0]["env"]}
    assert env["HLSFORGE_JOB__IMAGE"] == f"hlsforge/transcoder:{tag}"


# --- RBAC -------------------------------------------------------------------------------------

OPERATOR_RULES = [
    (["hlsforge.dev"], ["videotranscodes"], ["get", "list", "watch", "patch"]),
    (["hlsforge.dev"], ["videotranscodes/status"], ["patch"]),
    (["hlsforge.dev"], ["videotranscodes/finalizers"], ["update"]),
    (["batch"], ["jobs"], ["create", "list", "watch"]),
    ([""], ["pods"], ["list", "watch"]),
    ([""], ["pods/log"], ["get"]),
    ([""], ["events"], ["create"]),
]


def rules(role: Manifest) -> list[tuple[list[str], list[str], list[str]]]:
    return [(r["apiGroups"], r["resources"], r["verbs"]) for r in role["rules"]]


def test_rbac_has_no_wildcards_and_no_secrets(rendered: Rendered) -> None:
    for role in rendered.of_kind("Role", "ClusterRole"):
        for groups, resources, verbs in rules(role):
            assert "*" not in groups + resources + verbs, role["metadata"]["name"]
            assert "secrets" not in resources, role["metadata"]["name"]
            assert not {"escalate", "bind", "impersonate"} & set(verbs)


def test_operator_rbac_is_exactly_what_it_calls(rendered: Rendered) -> None:
    cluster_wide = rendered.name == "cluster-wide"
    kind = "ClusterRole" if cluster_wide else "Role"
    role = rendered.by_component(kind, "operator")
    expected = OPERATOR_RULES
    if cluster_wide:  # Kopf watches CRDs to notice the resource being (re)installed
        expected = [
            *expected,
            (["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch"]),
        ]
    assert rules(role) == expected
    binding = rendered.by_component(f"{kind}Binding", "operator")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role["metadata"]["name"],
    }  # fmt: skip
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{fullname(rendered)}-operator", "namespace": NAMESPACE}
    ]
    # Namespaced by default: nothing cluster-wide at all.
    assert bool(rendered.of_kind("ClusterRole", "ClusterRoleBinding")) == cluster_wide


def test_api_may_only_manage_videotranscodes_in_its_namespace(rendered: Rendered) -> None:
    role = rendered.by_component("Role", "api")
    assert rules(role) == [
        (["hlsforge.dev"], ["videotranscodes"], ["create", "get", "list", "delete"])
    ]
    binding = rendered.by_component("RoleBinding", "api")
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"][0]["name"] == f"{fullname(rendered)}-api"


# --- secrets ----------------------------------------------------------------------------------


def all_env(rendered: Rendered) -> Iterator[tuple[str, Manifest]]:
    for workload, pod in rendered.pod_specs():
        for container in containers(pod):
            for entry in container.get("env", []):
                yield f"{workload} {container['name']}", entry


def test_credentials_reach_containers_only_by_secret_reference(rendered: Rendered) -> None:
    for where, entry in all_env(rendered):
        if not CREDENTIAL_NAME.search(entry["name"]) or entry["name"] in NOT_CREDENTIALS:
            continue
        if "valueFrom" in entry:
            assert set(entry["valueFrom"]) == {"secretKeyRef"}, f"{where} {entry['name']}"
        else:  # composed by the kubelet from a variable that is itself a secretKeyRef
            assert "$(MONGODB_PASSWORD)" in entry["value"], f"{where} {entry['name']}"
    for _, pod in rendered.pod_specs():
        assert all("envFrom" not in container for container in containers(pod))


def test_no_secret_value_appears_outside_its_secret(rendered: Rendered) -> None:
    secrets = [s for s in rendered.of_kind("Secret") if s.get("type") not in NON_WORKLOAD_SECRETS]
    values = [
        v for s in secrets for v in (rendered.secret_data(s["metadata"]["name"]) or {}).values()
    ]
    others = json.dumps([doc for doc in rendered.documents if doc["kind"] != "Secret"])
    for value in values:
        assert value not in others


def test_generated_secrets_are_random_and_kept(rendered: Rendered) -> None:
    name = fullname(rendered)
    auth = rendered.secret_data(f"{name}-auth")
    if rendered.name in {"existing-secrets", "builtin-existing-secrets"}:
        assert auth is None
        assert rendered.secret_data(f"{name}-s3") is None
        assert rendered.secret_data(f"{name}-mongodb") is None
        return
    assert auth is not None
    assert len(auth["jwtSecret"]) >= 32
    assert len(auth["serviceToken"]) >= 32
    generated = [
        s for s in rendered.of_kind("Secret") if s["metadata"]["name"] != f"{name}-mongodb-uri"
    ]
    for secret in generated:
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


@pytest.mark.parametrize("value_set", ["existing-secrets", "builtin-existing-secrets"])
def test_existing_secrets_are_referenced_by_name(render_set: RenderSet, value_set: str) -> None:
    rendered = render_set(value_set)
    refs = {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for _, e in all_env(rendered)
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }
    expected = {
        ("acme-hlsforge-auth", "jwtSecret"), ("acme-hlsforge-auth", "serviceToken"),
        ("acme-s3", "accessKeyId"), ("acme-s3", "secretAccessKey"),
    }  # fmt: skip
    if rendered.name == "existing-secrets":
        expected.add(("acme-mongodb", "connection-string"))
    else:
        expected |= {("acme-mongodb", "password"), ("acme-mongodb", "rootPassword")}
    assert refs == expected


# --- network policies -------------------------------------------------------------------------


def components(rendered: Rendered, *kinds: str) -> set[str]:
    return {
        doc["metadata"]["labels"]["app.kubernetes.io/component"] for doc in rendered.of_kind(*kinds)
    }


def test_network_policies_follow_the_switch(rendered: Rendered) -> None:
    policies = components(rendered, "NetworkPolicy")
    if rendered.name == "minimal":
        assert policies == set()
    else:  # one per workload (MongoDB and MinIO when built in) and one for the Jobs
        assert policies == {"transcoder"} | components(rendered, "Deployment", "StatefulSet")


@pytest.mark.parametrize("value_set", WITH_POLICIES)
def test_transcoders_reach_only_dns_and_s3(render_set: RenderSet, value_set: str) -> None:
    rendered = render_set(value_set)
    policy = rendered.by_component("NetworkPolicy", "transcoder")["spec"]
    assert policy["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/managed-by": "hlsforge-operator"}
    }
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == []
    dns, *s3 = policy["egress"]
    assert dns == {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    assert s3, "no egress to S3"
    for rule in s3:
        assert rule.get("to"), rule  # never "anywhere on any port"
        assert rule.get("ports"), rule
    minio = [r for r in s3 if "podSelector" in r["to"][0]]
    if "minio" in components(rendered, "StatefulSet"):
        (rule,) = minio
        assert rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "minio"
        assert rule["ports"] == [{"protocol": "TCP", "port": 9000}]
    else:
        assert minio == []


@pytest.mark.parametrize("value_set", [name for name in BUILTIN_MONGODB if name in WITH_POLICIES])
def test_mongodb_is_reachable_only_from_api_and_operator(
    render_set: RenderSet, value_set: str
) -> None:
    rendered = render_set(value_set)
    policy = rendered.by_component("NetworkPolicy", "mongodb")["spec"]
    (rule,) = policy["ingress"]
    sources = {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in rule["from"]}
    assert sources == {"api", "operator"}
    for source in rule["from"]:
        assert source["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == RELEASE
    assert rule["ports"] == [{"protocol": "TCP", "port": 27017}]


@pytest.mark.parametrize("value_set", WITH_POLICIES)
def test_policies_select_the_pods_they_mean(render_set: RenderSet, value_set: str) -> None:
    """Every component policy's selector matches its workload's pod labels."""
    rendered = render_set(value_set)
    workloads = {
        doc["metadata"]["labels"]["app.kubernetes.io/component"]: doc["spec"]["template"][
            "metadata"
        ]["labels"]
        for doc in rendered.of_kind("Deployment", "StatefulSet")
    }
    for policy in rendered.of_kind("NetworkPolicy"):
        component = policy["metadata"]["labels"]["app.kubernetes.io/component"]
        if component == "transcoder":
            continue
        selector = policy["spec"]["podSelector"]["matchLabels"]
        assert selector.items() <= workloads[component].items(), component


# --- services ---------------------------------------------------------------------------------


def test_services_select_pods_and_named_ports(rendered: Rendered) -> None:
    pods = [
        (doc["spec"]["template"]["metadata"]["labels"], doc["spec"]["template"]["spec"])
        for doc in rendered.of_kind("Deployment", "StatefulSet")
    ]
    for service in rendered.of_kind("Service"):
        selector = service["spec"]["selector"]
        matches = [spec for labels, spec in pods if selector.items() <= labels.items()]
        assert len(matches) == 1, service["metadata"]["name"]
        names = {p["name"] for c in matches[0]["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, service["metadata"]["name"]


def test_kind_config_maps_the_node_ports_to_localhost() -> None:
    config = yaml.safe_load((ROOT / "kind-config.yaml").read_text())
    mapped = {m["containerPort"]: m["hostPort"] for m in config["nodes"][0]["extraPortMappings"]}
    assert mapped == {30080: 8000, 30900: 9000}


def test_kind_services_use_those_node_ports(render_set: RenderSet) -> None:
    rendered = render_set("kind")
    api = rendered.by_component("Service", "api")["spec"]
    minio = rendered.by_component("Service", "minio")["spec"]
    assert (api["type"], api["ports"][0]["nodePort"]) == ("NodePort", 30080)
    assert (minio["type"], minio["ports"][0]["nodePort"]) == ("NodePort", 30900)


# --- the environment contract -----------------------------------------------------------------


def resolved_env(rendered: Rendered, component: str) -> dict[str, str]:
    """The container's environment as the kubelet would set it: Secrets read (an existing
    Secret's value stands in as a random string), `$(VAR)` references expanded."""
    pod = rendered.by_component("Deployment", component)["spec"]["template"]["spec"]
    env: dict[str, str] = {}
    for entry in pod["containers"][0]["env"]:
        if "value" in entry:
            value = re.sub(r"\$\((\w+)\)", lambda m: env.get(m[1], m[0]), entry["value"])
        elif "secretKeyRef" in entry["valueFrom"]:
            ref = entry["valueFrom"]["secretKeyRef"]
            data = rendered.secret_data(ref["name"])
            value = (
                data[ref["key"]]
                if data is not None
                else f"existing-{ref['name']}-{ref['key']}-" + "x" * 32
            )
        else:
            assert entry["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
            value = NAMESPACE
        env[entry["name"]] = value
    return env


def settings_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in list(os.environ):
        if name.startswith(("HLSFORGE_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def secret(value: SecretStr | None) -> str:
    assert value is not None
    return value.get_secret_value()


def test_operator_settings_read_the_rendered_environment(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = resolved_env(rendered, "operator")
    settings_env(monkeypatch, env)
    settings = OperatorSettings()
    name = fullname(rendered)
    assert settings.namespaces == ([] if rendered.name == "cluster-wide" else [NAMESPACE])
    assert (
        settings.api_url
        == f"http://{name}-api.{NAMESPACE}.svc:{8000 if rendered.name != 'ingress' else 80}"
    )
    assert settings.job.s3_secret_name == (
        "acme-s3" if "existing-secrets" in rendered.name else f"{name}-s3"
    )
    assert secret(settings.service_token) == resolved_env(rendered, "api")["HLSFORGE_SERVICE_TOKEN"]
    assert secret(settings.mongodb_uri).startswith(("mongodb://", "mongodb+srv://", "existing-"))
    assert "$(" not in secret(settings.mongodb_uri)
    s3_endpoint = env.get("AWS_ENDPOINT_URL")
    assert settings.job.s3_endpoint_url == s3_endpoint
    if "minio" in components(rendered, "StatefulSet"):
        assert s3_endpoint == f"http://{name}-minio.{NAMESPACE}.svc:9000"
    assert env["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"]
    # The Job settings come from operator.job.* (values.yaml defaults, kind: smaller scratch).
    assert settings.job.scratch_size_limit == ("5Gi" if rendered.name == "kind" else "20Gi")
    assert (settings.job.backoff_limit, settings.job.active_deadline_seconds) == (2, 21600)
    assert settings.job.ttl_seconds_after_finished == 3600
    assert settings.job.max_duration_seconds == 14400
    assert settings.max_running_jobs == {"kind": 2, "cluster-wide": 16}.get(rendered.name, 4)


@pytest.mark.parametrize("value_set", BUILTIN_MONGODB)
def test_builtin_mongodb_uri_has_the_app_users_password(
    render_set: RenderSet, value_set: str
) -> None:
    rendered = render_set(value_set)
    name = fullname(rendered)
    data = rendered.secret_data(f"{name}-mongodb")
    assert data is not None
    uri = resolved_env(rendered, "api")["HLSFORGE_MONGODB_URI"]
    assert uri == (
        f"mongodb://hlsforge:{data['password']}@{name}-mongodb.{NAMESPACE}.svc:27017/"
        "hlsforge?authSource=hlsforge"
    )


def test_api_settings_read_the_rendered_environment(
    rendered: Rendered, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = resolved_env(rendered, "api")
    settings_env(monkeypatch, env)
    settings = ApiSettings()  # refuses placeholder or short secrets
    assert settings.namespace == NAMESPACE
    assert settings.dev_mode is False
    assert (settings.upload_bucket, settings.media_bucket) == (
        ("acme-video-uploads", "acme-video-media")
        if rendered.name == "external-services"
        else ("hlsforge-uploads", "hlsforge-media")
    )
    if rendered.name == "kind":
        assert settings.s3_public_endpoint_url == "http://localhost:9000"
    operator_env = resolved_env(rendered, "operator")
    assert settings.s3_endpoint_url == operator_env.get("AWS_ENDPOINT_URL")
    assert secret(settings.mongodb_uri) == operator_env["HLSFORGE_MONGODB_URI"]


@pytest.mark.parametrize("component", ["api", "operator"])
def test_api_and_operator_args_match_their_images(rendered: Rendered, component: str) -> None:
    (container,) = rendered.by_component("Deployment", component)["spec"]["template"]["spec"][
        "containers"
    ]
    assert "command" not in container  # the image's ENTRYPOINT (hlsforge-api / hlsforge-operator)
    if component == "api":
        port = str(container["ports"][0]["containerPort"])
        assert container["args"] == ["--host", "0.0.0.0", "--port", port]  # noqa: S104
