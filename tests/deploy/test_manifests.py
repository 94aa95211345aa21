"""What the rendered manifests promise: locked-down pods, least-privilege RBAC, secrets only by
reference, NetworkPolicies, and the environment each deployable's settings class expects."""

import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from deploy.chart import NAMESPACE, RELEASE, ROOT, VALUE_SETS, Manifest, Rendered, render
from pydantic import SecretStr

from transcode_api.main import INDEX_ATTEMPTS
from transcode_api.settings import ApiSettings
from transcode_operator.settings import OperatorSettings

NON_WORKLOAD_SECRETS = {"kubernetes.io/tls", "kubernetes.io/dockerconfigjson"}
CREDENTIAL_NAME = re.compile(
    r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|_URI$|REDIS_URL$|CREDENTIAL", re.IGNORECASE
)
NOT_CREDENTIALS = {"HLSFORGE_JOB__S3_SECRET_NAME"}  # names a Secret, holds none

RenderSet = Callable[[str], Rendered]
WITH_POLICIES = [name for name in VALUE_SETS if name != "minimal"]
BUILTIN_MONGODB = ["defaults", "kind", "cluster-wide", "ingress", "minimal"]
BUILTIN_MINIO = [*BUILTIN_MONGODB, "builtin-existing-secrets"]
WITHOUT_REDIS = ["existing-secrets", "external-services", "minimal"]  # external, or none


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


def spread(pod: Manifest, component: str) -> dict[str, str]:
    """topologyKey: whenUnsatisfiable of the pod's spread constraints, each over its own
    component's pods of one revision."""
    constraints = pod["topologySpreadConstraints"]
    for constraint in constraints:
        labels = constraint["labelSelector"]["matchLabels"]
        assert labels["app.kubernetes.io/component"] == component
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert constraint["maxSkew"] == 1
        assert constraint["matchLabelKeys"] == ["pod-template-hash"]
    return {c["topologyKey"]: c["whenUnsatisfiable"] for c in constraints}


def test_operator_runs_a_standby_and_is_rolled(rendered: Rendered) -> None:
    """One replica holds the Lease, the others wait: a rollout may start the new pod first."""
    operator = rendered.by_component("Deployment", "operator")
    assert operator["spec"]["replicas"] == (1 if rendered.name == "minimal" else 2)
    assert operator["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }  # fmt: skip
    pod = operator["spec"]["template"]["spec"]
    assert spread(pod, "operator") == {"kubernetes.io/hostname": "ScheduleAnyway"}
    (container,) = pod["containers"]
    lease = {e["name"]: e for e in container["env"] if e["name"].startswith("HLSFORGE_LEASE__")}
    assert lease == {
        "HLSFORGE_LEASE__NAME": {
            "name": "HLSFORGE_LEASE__NAME", "value": f"{fullname(rendered)}-operator",
        },
        "HLSFORGE_LEASE__NAMESPACE": {
            "name": "HLSFORGE_LEASE__NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        "HLSFORGE_LEASE__IDENTITY": {
            "name": "HLSFORGE_LEASE__IDENTITY",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}},
        },
    }  # fmt: skip
    assert components(rendered, "PodDisruptionBudget") <= {"api"}  # a standby is enough
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == {
        "healthz": 8080,
        "metrics": 9090,
    }


def test_api_replicas_are_spread_and_kept_up(rendered: Rendered) -> None:
    """Two replicas by default (one with `minimal`, which has no Redis): on different nodes
    and zones where possible, a new pod up before an old one goes, and a PodDisruptionBudget
    that lets a drain take only one at a time (none for a single replica)."""
    api = rendered.by_component("Deployment", "api")
    replicas = 1 if rendered.name == "minimal" else 2
    assert api["spec"]["replicas"] == replicas
    assert api["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }  # fmt: skip
    assert spread(api["spec"]["template"]["spec"], "api") == {
        "kubernetes.io/hostname": "ScheduleAnyway",
        "topology.kubernetes.io/zone": "ScheduleAnyway",
    }
    pdbs = rendered.of_kind("PodDisruptionBudget")
    if replicas == 1:
        assert pdbs == []
        return
    (pdb,) = pdbs
    assert pdb["metadata"]["name"] == f"{fullname(rendered)}-api"
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": api["spec"]["selector"],
    }


def test_api_outlasts_its_mongodb_retries(rendered: Rendered) -> None:
    """On a fresh install the API waits for MongoDB before it serves: each of INDEX_ATTEMPTS
    tries is a 3 s server selection timeout and a 2 s sleep (transcode_api.main). The startup
    probe must give it that long, and more, before the kubelet restarts it."""
    api = rendered.by_component("Deployment", "api")
    (container,) = api["spec"]["template"]["spec"]["containers"]
    probe = container["startupProbe"]
    budget = probe["periodSeconds"] * probe["failureThreshold"]
    assert budget >= 180
    assert budget >= INDEX_ATTEMPTS * (3 + 2) + 30


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
    (["batch"], ["jobs"], ["create", "list", "watch", "patch", "delete"]),  # patch: widen
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
    name = fullname(rendered)
    role = rendered.get(
        kind, f"{NAMESPACE}-{name}-operator" if cluster_wide else f"{name}-operator"
    )
    expected = OPERATOR_RULES
    if cluster_wide:  # Kopf watches CRDs to notice the resource being (re)installed
        expected = [
            *expected,
            (["apiextensions.k8s.io"], ["customresourcedefinitions"], ["list", "watch"]),
        ]
    assert rules(role) == expected
    binding = rendered.get(f"{kind}Binding", role["metadata"]["name"])
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role["metadata"]["name"],
    }  # fmt: skip
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{fullname(rendered)}-operator", "namespace": NAMESPACE}
    ]
    # Namespaced by default: nothing cluster-wide at all.
    assert bool(rendered.of_kind("ClusterRole", "ClusterRoleBinding")) == cluster_wide
    operator_roles = [
        r["metadata"]["name"]
        for r in rendered.of_kind("Role", "ClusterRole")
        if r["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    ]
    assert sorted(operator_roles) == sorted([role["metadata"]["name"], f"{name}-operator-lease"])


def test_operator_may_hold_only_its_own_lease(rendered: Rendered) -> None:
    """In the release namespace, also when cluster-wide: get and update its one Lease, create
    it (create cannot be limited to a name); never list, watch, patch or delete Leases."""
    name = fullname(rendered)
    role = rendered.get("Role", f"{name}-operator-lease")  # a Role (namespaced) in every set
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [f"{name}-operator"],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
    ]
    binding = rendered.get("RoleBinding", f"{name}-operator-lease")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{name}-operator-lease",
    }  # fmt: skip
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{name}-operator", "namespace": NAMESPACE}
    ]
    # The Lease the operator is told to hold is the one it may update.
    assert resolved_env(rendered, "operator")["HLSFORGE_LEASE__NAME"] == f"{name}-operator"
    leases = [
        rule
        for r in rendered.of_kind("Role", "ClusterRole")
        for rule in r["rules"]
        if "leases" in rule["resources"]
    ]
    assert leases == role["rules"]


def test_api_may_only_manage_videotranscodes_in_its_namespace(rendered: Rendered) -> None:
    role = rendered.by_component("Role", "api")
    assert rules(role) == [
        (["hlsforge.dev"], ["videotranscodes"], ["create", "list", "patch", "delete"])
    ]  # transcode_api/kube.py: create, patch (cancel/retry annotations), delete and list (its
    # readiness check), never get
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
        assert rendered.secret_data(f"{name}-minio-root") is None
        return
    assert auth is not None
    assert len(auth["jwtSecret"]) >= 32
    assert len(auth["serviceToken"]) >= 32
    # Not generated: copied from values (an external MongoDB URI or Redis URL); Redis: below.
    skipped = {f"{name}-mongodb-uri", f"{name}-redis-url", f"{name}-redis"}
    generated = [s for s in rendered.of_kind("Secret") if s["metadata"]["name"] not in skipped]
    for secret in generated:
        secret_name = secret["metadata"]["name"]
        assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
        if secret_name == f"{name}-s3" and rendered.name == "external-services":
            continue  # s3.accessKeyId and s3.secretAccessKey, not generated
        # Alphanumeric: the MongoDB password goes into the URI unescaped.
        for value in (rendered.secret_data(secret_name) or {}).values():
            assert re.fullmatch(r"[A-Za-z0-9]{20,}", value), secret_name
    redis = rendered.secret_data(f"{name}-redis")
    if rendered.name in WITHOUT_REDIS:
        assert redis is None
        return
    # Generated and kept across upgrades too, but not after an uninstall (Redis stores nothing).
    secret = rendered.get("Secret", f"{name}-redis")
    assert "helm.sh/resource-policy" not in secret["metadata"].get("annotations", {})
    assert redis is not None
    assert re.fullmatch(r"[A-Za-z0-9]{32}", redis["password"])
    assert redis == {
        "password": redis["password"],
        "url": f"redis://:{redis['password']}@{name}-redis.{NAMESPACE}.svc:6379/0",
    }


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
        expected.add(("acme-redis", "redis-url"))
    else:
        expected |= {("acme-mongodb", "password"), ("acme-mongodb", "rootPassword")}
        expected |= {("acme-minio-root", "rootUser"), ("acme-minio-root", "rootPassword")}
        # The built-in Redis has no existing-Secret option: its password is always generated.
        redis = f"{fullname(rendered)}-redis"
        expected |= {(redis, "password"), (redis, "url")}
    assert refs == expected


def secret_refs(pod: Manifest) -> set[tuple[str, str]]:
    return {
        (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for container in containers(pod)
        for e in container.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def minio_root_secret(rendered: Rendered) -> str:
    if rendered.name == "builtin-existing-secrets":
        return "acme-minio-root"
    return f"{fullname(rendered)}-minio-root"


def test_minio_root_credentials_reach_only_minio_and_its_bucket_job(rendered: Rendered) -> None:
    """The API, the operator and the transcoder Jobs (FFmpeg on untrusted input) use the S3
    Secret's keys: a MinIO user limited to the two buckets, never MinIO's root."""
    name = fullname(rendered)
    root = minio_root_secret(rendered)
    root_refs = {(root, "rootUser"), (root, "rootPassword")}
    s3 = "acme-s3" if "existing-secrets" in rendered.name else f"{name}-s3"
    builtin = rendered.name in BUILTIN_MINIO
    with_root = {f"StatefulSet/{name}-minio", f"Job/{name}-minio-buckets-1"} if builtin else set()
    assert {workload for workload, _ in rendered.pod_specs()} >= with_root
    for workload, pod in rendered.pod_specs():
        refs = secret_refs(pod)
        assert {ref for ref in refs if ref[0] == root} == (
            root_refs if workload in with_root else set()
        ), workload
        if workload == f"StatefulSet/{name}-minio":
            assert {ref for ref in refs if ref[0] == s3} == set()
        if workload.startswith("Deployment/"):
            assert {(s3, "accessKeyId"), (s3, "secretAccessKey")} <= refs, workload
    operator = resolved_env(rendered, "operator")
    assert operator["HLSFORGE_JOB__S3_SECRET_NAME"] == s3
    if not builtin:
        assert rendered.secret_data(root) is None


@pytest.mark.parametrize("value_set", ["defaults", "kind"])
def test_generated_s3_keys_are_not_minio_root(render_set: RenderSet, value_set: str) -> None:
    rendered = render_set(value_set)
    name = fullname(rendered)
    s3 = rendered.secret_data(f"{name}-s3")
    root = rendered.secret_data(f"{name}-minio-root")
    assert s3 is not None
    assert root is not None
    assert set(s3) == {"accessKeyId", "secretAccessKey"}
    assert set(root) == {"rootUser", "rootPassword"}
    assert not set(s3.values()) & set(root.values())
    # The end-to-end tests and kind-up.sh find the application's keys by this label.
    labelled = [
        s for s in rendered.of_kind("Secret")
        if s["metadata"]["labels"]["app.kubernetes.io/component"] == "s3"
    ]  # fmt: skip
    assert [s["metadata"]["name"] for s in labelled] == [f"{name}-s3"]


ALLOWED_S3_ACTIONS = {
    "s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads", "s3:GetObject",
    "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts",
}  # fmt: skip
FAKE_MC = """#!/bin/sh
printf '%s\\n' "$*" >>"$MC_LOG"
case "$*" in
  "admin policy create "*) cp "$6" "$MC_LOG.policy" ;;
  "admin policy attach "*)
    if [ -n "$MC_ATTACHED" ]; then
      echo "mc: <ERROR> Unable to make user/group policy association." \\
        "The specified policy change is already in effect." >&2
      exit 1
    fi
    if [ -n "$MC_BROKEN" ]; then echo "mc: <ERROR> the server is gone" >&2; exit 1; fi ;;
esac
"""


def run_bucket_job(
    rendered: Rendered, tmp_path: Path, **extra: str
) -> tuple[subprocess.CompletedProcess[str], list[str], dict[str, str]]:
    """The bucket Job's script under /bin/sh, with a fake `mc` that logs its arguments."""
    job = rendered.by_component("Job", "minio-buckets")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["/bin/sh", "-ec"]
    env = resolve_env(rendered, container["env"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "mc").write_text(FAKE_MC)
    (bin_dir / "mc").chmod(0o755)
    log = tmp_path / "mc.log"
    log.unlink(missing_ok=True)
    run_env = {
        **env, "POLICY_FILE": str(tmp_path / "policy.json"), "MC_LOG": str(log),
        "MC_CONFIG_DIR": str(tmp_path / "mc"), "HOME": str(tmp_path),
        "PATH": f"{bin_dir}:{os.environ['PATH']}", **extra,
    }  # fmt: skip
    result = subprocess.run(
        ["/bin/sh", "-ec", container["args"][0]],
        env=run_env, capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    calls = log.read_text().splitlines() if log.exists() else []
    return result, calls, run_env


@pytest.mark.parametrize("value_set", ["defaults", "builtin-existing-secrets"])
def test_bucket_job_makes_a_user_limited_to_the_buckets(
    render_set: RenderSet, value_set: str, tmp_path: Path
) -> None:
    rendered = render_set(value_set)
    result, calls, env = run_bucket_job(rendered, tmp_path)
    assert result.returncode == 0, result.stderr
    policy_name = f"{fullname(rendered)}-objects"
    user = env["APP_ACCESS_KEY_ID"]
    assert user != env["MINIO_ROOT_USER"]
    assert calls == [
        f"alias set hlsforge {env['S3_ENDPOINT']} {env['MINIO_ROOT_USER']} "
        f"{env['MINIO_ROOT_PASSWORD']}",
        "ls hlsforge",
        "mb --ignore-existing hlsforge/hlsforge-uploads",
        "mb --ignore-existing hlsforge/hlsforge-media",
        f"admin policy create hlsforge {policy_name} {env['POLICY_FILE']}",
        f"admin user add hlsforge {user} {env['APP_SECRET_ACCESS_KEY']}",
        f"admin policy attach hlsforge {policy_name} --user {user}",
    ]
    assert env["APP_SECRET_ACCESS_KEY"] not in result.stdout + result.stderr
    policy = json.loads((tmp_path / "mc.log.policy").read_text())
    assert policy["Version"] == "2012-10-17"
    buckets = ["hlsforge-uploads", "hlsforge-media"]
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert set(statement["Action"]) <= ALLOWED_S3_ACTIONS
        assert statement["Resource"] in (
            [f"arn:aws:s3:::{b}" for b in buckets],
            [f"arn:aws:s3:::{b}/*" for b in buckets],
        )
    actions = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert actions == ALLOWED_S3_ACTIONS


def test_bucket_job_runs_again_after_an_upgrade(render_set: RenderSet, tmp_path: Path) -> None:
    """A new Job per revision: the policy already attached is not an error, others are."""
    rendered = render_set("defaults")
    again, calls, _ = run_bucket_job(rendered, tmp_path, MC_ATTACHED="1")
    assert again.returncode == 0, again.stderr
    assert calls[-1].startswith("admin policy attach ")
    broken, _, _ = run_bucket_job(rendered, tmp_path, MC_BROKEN="1")
    assert broken.returncode != 0
    assert "the server is gone" in broken.stderr


def test_bucket_job_refuses_application_keys_that_are_minio_root(
    render_set: RenderSet, tmp_path: Path
) -> None:
    rendered = render_set("builtin-existing-secrets")
    result, calls, _ = run_bucket_job(rendered, tmp_path, MINIO_ROOT_USER="same-key-id")
    assert result.returncode == 0, result.stderr  # differing keys: fine
    result, calls, _ = run_bucket_job(
        rendered, tmp_path, MINIO_ROOT_USER="same-key-id", APP_ACCESS_KEY_ID="same-key-id"
    )
    assert result.returncode != 0
    assert "root user" in result.stderr
    assert calls == []


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


@pytest.mark.parametrize(
    "value_set",
    [name for name in VALUE_SETS if name in WITH_POLICIES and name not in WITHOUT_REDIS],
)
def test_redis_is_reachable_only_from_the_api(render_set: RenderSet, value_set: str) -> None:
    rendered = render_set(value_set)
    policy = rendered.by_component("NetworkPolicy", "redis")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    (source,) = rule["from"]
    api = rendered.by_component("Deployment", "api")["spec"]["selector"]
    assert source == {"podSelector": api}
    assert rule["ports"] == [{"protocol": "TCP", "port": 6379}]


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


# --- Redis ------------------------------------------------------------------------------------


def test_builtin_redis_stores_nothing_and_reads_its_password_from_the_secret(
    rendered: Rendered,
) -> None:
    """Pub/sub only: no volume claim, no RDB or AOF; `requirepass` is put into the arguments by
    the kubelet from the Secret, so the pod spec holds a reference, never the password."""
    name = fullname(rendered)
    if rendered.name in WITHOUT_REDIS:
        assert "redis" not in components(rendered, "StatefulSet", "Service", "NetworkPolicy")
        return
    redis = rendered.get("StatefulSet", f"{name}-redis")
    assert redis["spec"]["replicas"] == 1
    assert "volumeClaimTemplates" not in redis["spec"]
    pod = redis["spec"]["template"]["spec"]
    assert all(set(volume) == {"name", "emptyDir"} for volume in pod["volumes"])
    (container,) = pod["containers"]
    assert container["image"] == "redis:7.4-alpine"
    assert "command" not in container  # the image's entrypoint runs redis-server
    assert container["args"] == [
        "--port", "6379", "--requirepass", "$(REDIS_PASSWORD)", "--save", "", "--appendonly", "no",
    ]  # fmt: skip
    assert container["env"] == [
        {
            "name": "REDIS_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": f"{name}-redis", "key": "password"}},
        }
    ]
    password = (rendered.secret_data(f"{name}-redis") or {})["password"]
    assert resolve_env(rendered, container["env"])["REDIS_PASSWORD"] == password
    service = rendered.get("Service", f"{name}-redis")["spec"]
    assert service["ports"] == [
        {"name": "redis", "port": 6379, "targetPort": "redis", "protocol": "TCP"}
    ]


def test_the_api_reads_the_redis_url_from_a_secret(rendered: Rendered) -> None:
    """HLSFORGE_REDIS_URL carries the password: only by secretKeyRef, and neither the URL nor
    the password appears in any pod spec. `minimal` has no Redis (one API replica)."""
    name = fullname(rendered)
    env = rendered.by_component("Deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    refs = [e["valueFrom"] for e in env["env"] if e["name"] == "HLSFORGE_REDIS_URL"]
    expected = {
        "existing-secrets": [{"secretKeyRef": {"name": "acme-redis", "key": "redis-url"}}],
        "external-services": [{"secretKeyRef": {"name": f"{name}-redis-url", "key": "url"}}],
        "minimal": [],
    }.get(rendered.name, [{"secretKeyRef": {"name": f"{name}-redis", "key": "url"}}])
    assert refs == expected
    urls = [
        data["url"]
        for data in (rendered.secret_data(f"{name}-{s}") for s in ("redis", "redis-url"))
        if data is not None
    ]  # what the chart's own Secrets hold
    if rendered.name == "external-services":
        assert urls == ["rediss://:not-a-real-password@redis.example.net:6380/0"]
    else:
        assert len(urls) == (0 if rendered.name in WITHOUT_REDIS else 1)
    pods = json.dumps([spec for _, spec in rendered.pod_specs()])
    for url in urls:
        password = urlsplit(url).password
        assert password
        assert url not in pods
        assert password not in pods


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


POD_NAME = "the-pod-name"  # what `fieldRef: metadata.name` stands for


def resolved_env(rendered: Rendered, component: str) -> dict[str, str]:
    """The Deployment's container environment as the kubelet would set it."""
    pod = rendered.by_component("Deployment", component)["spec"]["template"]["spec"]
    return resolve_env(rendered, pod["containers"][0]["env"])


def resolve_env(rendered: Rendered, entries: list[Manifest]) -> dict[str, str]:
    """`env` entries as the kubelet would set them: Secrets read (an existing Secret's value
    stands in as a random string), `$(VAR)` references expanded."""
    env: dict[str, str] = {}
    for entry in entries:
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
            field = entry["valueFrom"]["fieldRef"]["fieldPath"]
            assert entry["valueFrom"] == {"fieldRef": {"fieldPath": field}}
            value = {"metadata.namespace": NAMESPACE, "metadata.name": POD_NAME}[field]
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
    # The Job settings come from operator.job.* (values.yaml defaults).
    assert (settings.job.backoff_limit, settings.job.active_deadline_seconds) == (2, 21600)
    assert settings.job.ttl_seconds_after_finished == 3600
    assert settings.job.max_duration_seconds == 14400
    assert settings.bind_address == "0.0.0.0"  # noqa: S104 (what the probes reach in a pod)
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
    # api.maxBodyBytes, api.trustedProxies and api.rateLimits.* (values.yaml defaults)
    assert "HLSFORGE_TRUSTED_PROXIES" in env
    assert (settings.max_body_bytes, settings.trusted_proxies) == (1024 * 1024, [])
    assert (settings.login_failures_per_account, settings.login_failures_per_address,
            settings.login_window_seconds) == (10, 100, 900)  # fmt: skip
    assert (settings.registrations_per_address, settings.registration_window_seconds) == (20, 3600)
    name = fullname(rendered)
    redis_url = None if settings.redis_url is None else secret(settings.redis_url)
    if rendered.name == "minimal":
        assert redis_url is None  # one replica, rooms in its own memory
    elif rendered.name == "external-services":
        assert redis_url == "rediss://:not-a-real-password@redis.example.net:6380/0"
    elif rendered.name == "existing-secrets":
        assert redis_url == "existing-acme-redis-redis-url-" + "x" * 32
    else:
        password = (rendered.secret_data(f"{name}-redis") or {})["password"]
        assert redis_url == f"redis://:{password}@{name}-redis.{NAMESPACE}.svc:6379/0"


@pytest.mark.parametrize("component", ["api", "operator"])
def test_api_and_operator_args_match_their_images(rendered: Rendered, component: str) -> None:
    (container,) = rendered.by_component("Deployment", component)["spec"]["template"]["spec"][
        "containers"
    ]
    assert "command" not in container  # the image's ENTRYPOINT (hlsforge-api / hlsforge-operator)
    if component == "api":
        port = str(container["ports"][0]["containerPort"])
        assert container["args"] == ["--host", "0.0.0.0", "--port", port]  # noqa: S104


# --- rollouts ---------------------------------------------------------------------------------


def checksums(rendered: Rendered) -> dict[str, str]:
    return {
        component: rendered.by_component("Deployment", component)["spec"]["template"]["metadata"][
            "annotations"
        ]["checksum/config"]
        for component in ("api", "operator")
    }


def test_config_checksum_ignores_generated_values(helm: str) -> None:
    """Generated values are random in a render without a cluster (and on a first install), read
    back on upgrades: a checksum over them would roll the pods on the first `helm upgrade`."""
    first, second = (render(helm, "defaults", VALUE_SETS["defaults"]) for _ in range(2))
    name = fullname(first)
    assert first.secret_data(f"{name}-auth") != second.secret_data(f"{name}-auth")
    assert checksums(first) == checksums(second)


@pytest.mark.parametrize(
    "sets",
    [
        {"s3.secretAccessKey": "another-secret"},
        {"mongodb.external.uri": "mongodb://x/y"},
        {"redis.url": "redis://:another-password@redis:6379/0"},
    ],
)
def test_config_checksum_follows_values_copied_into_secrets(
    helm: str, render_set: RenderSet, sets: dict[str, str]
) -> None:
    base = render_set("external-services")
    changed = render(helm, "external-services", VALUE_SETS["external-services"], sets)
    for component, checksum in checksums(changed).items():
        assert checksum != checksums(base)[component], component
