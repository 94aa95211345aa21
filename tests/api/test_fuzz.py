"""Fuzz the OpenAPI schema with schemathesis against the live API (real uvicorn, SecantusDB,
moto, the emulated Kubernetes API): no request, however malformed, may answer 5xx, and every
documented answer must match the published schema.

Requests carry a signed-in user's bearer token, so the protected routes run beyond their 401,
and path ids are often those of the user's real videos (one uploaded and ready to complete, one
multipart upload in progress), so the handlers run beyond their 404 too. The DELETE operations
run last, so the videos exist for every other operation.

Each operation gets schemathesis's deterministic coverage cases (boundaries, missing and
mistyped fields, positive and negative), then Hypothesis-generated positive and negative cases,
derandomized so every run sends the same requests. It is driven through schemathesis's Python
API (`APIOperation.as_strategy()` under `@given`, `iter_coverage_cases`) rather than
`schemathesis.pytest.from_fixture`, whose lazy loader fails on pytest 9.2 (`'Function' object
has no attribute '_nodeid'`); that also gives one live server for all operations and reports
every failing operation at once.
"""

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from helpers import Api, Signup
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import response_schema_conformance

MiB = 1024 * 1024
MAX_EXAMPLES = 15  # generated cases per operation and mode, after the coverage cases
MODES = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same cases on every run: CI is deterministic
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    verbosity=Verbosity.quiet,
)
MP4_HEAD = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
Check = schemathesis.CheckFunction
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
Case = schemathesis.Case[Any]


def create_video(client: httpx.Client, size: int) -> dict[str, Any]:
    created = client.post("/api/v1/videos", json={
        "title": "fuzz", "filename": "fuzz.mp4", "contentType": "video/mp4", "size": size,
    })  # fmt: skip
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def real_videos(api: Api, token: str) -> list[str]:
    """An uploaded video (so `complete` creates its VideoTranscode) and a multipart one."""
    with api.client(token) as client:
        uploaded = create_video(client, 1000)
        multipart = create_video(client, 6 * MiB)
    upload = uploaded["upload"]
    content = MP4_HEAD.ljust(1000, b"\0")
    stored = httpx.post(upload["url"], data=upload["fields"],
                        files={"file": ("fuzz.mp4", content, "video/mp4")})  # fmt: skip
    assert stored.status_code in (200, 204), stored.text
    return [uploaded["video"]["id"], multipart["video"]["id"]]


def load_schema(api: Api, headers: dict[str, str], video_ids: list[str]) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    schema.config.update(headers=headers, request_timeout=30)

    @schema.hook
    def flatmap_path_parameters(
        context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
    ) -> st.SearchStrategy[dict[str, Any] | None]:
        """A real video's id two times out of three, else the generated one."""
        if not path_parameters or "video_id" not in path_parameters:
            return st.just(path_parameters)
        return st.sampled_from([*video_ids, path_parameters["video_id"]]).map(
            lambda video_id: {**path_parameters, "video_id": video_id}
        )

    @schema.hook
    def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
        """New videos: an accepted content type two times out of three, so some are created."""
        if context.operation is None or context.operation.label != "POST /api/v1/videos":
            return st.just(body)
        if not isinstance(body, dict) or "contentType" not in body:
            return st.just(body)
        return st.sampled_from(["video/mp4", "video/webm", body["contentType"]]).map(
            lambda content_type: {**body, "contentType": content_type}
        )

    return schema


def operations(schema: schemathesis.BaseSchema) -> list[Operation]:
    """All operations, the DELETEs last, and last of all the one deleting whole videos."""
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            pytest.fail(f"the published schema is invalid: {result.err()}")
        found.append(result.ok())
    deletes_videos = "/api/v1/videos/{video_id}"
    return sorted(found, key=lambda op: (op.method.upper() == "DELETE", op.path == deletes_videos))


def coverage_cases(
    schema: schemathesis.BaseSchema, operation: Operation, video_ids: list[str]
) -> Iterator[Case]:
    """Schemathesis's coverage phase; well-formed video ids become real ones, alternately."""
    cases = schema.iter_coverage_cases(
        operation, generation_modes=MODES, generation_config=schema.config.generation
    )
    for number, case in enumerate(cases):
        video_id = (case.path_parameters or {}).get("video_id")
        if isinstance(video_id, str) and len(video_id) == 24:
            case.path_parameters = {**case.path_parameters, "video_id": video_ids[number % 2]}
        yield case


def fuzz(operation: Operation, mode: GenerationMode, check: Check,
         headers: dict[str, str]) -> None:  # fmt: skip
    """Hypothesis-generated cases in one mode; raises schemathesis's report on a failure."""

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Case) -> None:
        case.call_and_validate(headers=headers, checks=[check])

    with contextlib.suppress(Unsatisfiable):  # nothing to negate in `{token}`, `{path}`
        run()


def fuzz_operation(
    schema: schemathesis.BaseSchema, operation: Operation, check: Check,
    headers: dict[str, str], video_ids: list[str],
) -> list[str]:  # fmt: skip
    """The coverage cases, then each mode's generated ones: a report per failing part (with a
    curl command to reproduce it)."""
    failures = []
    for part in ("coverage", *MODES):
        try:
            if part == "coverage":
                for case in coverage_cases(schema, operation, video_ids):
                    case.call_and_validate(headers=headers, checks=[check])
            else:
                fuzz(operation, GenerationMode(part), check, headers)
        except (Exception, BaseExceptionGroup) as exc:  # FailureGroup is a BaseExceptionGroup
            failures.append(f"{operation.label} ({part}):\n{exc}")
    return failures


@pytest.mark.parametrize("check", [
    not_a_server_error,
    response_schema_conformance,
])  # fmt: skip
def test_fuzz_the_openapi_schema(api: Api, signup: Signup, check: Check) -> None:
    token = signup()
    headers = {"Authorization": f"Bearer {token}"}
    video_ids = real_videos(api, token)
    schema = load_schema(api, headers, video_ids)
    found = operations(schema)
    assert len(found) >= 15, [operation.label for operation in found]
    failures = [
        failure
        for operation in found
        for failure in fuzz_operation(schema, operation, check, headers, video_ids)
    ]
    assert not failures, "\n\n".join(failures)


# Regressions the fuzzer found, pinned so they do not depend on its seed


def test_login_with_a_json_body_that_is_not_utf8_is_a_422(api: Api) -> None:
    with api.client() as client:
        login = client.post("/api/v1/auth/login", content=b"\xff\x0cl\xfe)x",
                            headers={"Content-Type": "application/json"})  # fmt: skip
    assert login.status_code == 422, login.text


def test_login_errors_never_echo_the_password(api: Api) -> None:
    with api.client() as client:
        login = client.post("/api/v1/auth/login", json={"password": "hunter2-secret"})
    assert login.status_code == 422, login.text
    assert "hunter2-secret" not in login.text


def test_patch_with_nulls_changes_nothing(api: Api, signup: Signup) -> None:
    with api.client(signup()) as client:
        video_id = create_video(client, 1000)["video"]["id"]
        nulls = {"title": None, "description": None, "visibility": None}
        patched = client.patch(f"/api/v1/videos/{video_id}", json=nulls)
    assert patched.status_code == 200, patched.text
    video = patched.json()
    assert (video["title"], video["description"], video["visibility"]) == ("fuzz", "", "private")


# Hostile bodies on every route that takes one, found in the published schema, so a new route
# is covered when it is added: numbers JSON does not have, lone surrogates, invalid UTF-8,
# bodies nested too deep or over the size limit, and values that must not come back.

SENTINEL = "Sentinel-4c1e"
HOSTILE_BODIES = {
    "NaN": b'{"a": NaN}',
    "-Infinity": b"[-Infinity]",
    "1e309": b'{"a": [1e309]}',
    "4301 digits": b"1" * 4301,
    "lone surrogate": b'{"a": "\\udc00"}',
    "surrogate key": b'{"\\ud83d": "x"}',
    "invalid UTF-8": b'{"a": "\xc0\xaf"}',
    "UTF-8 surrogate": b'{"a": "\xed\xb0\x80"}',
    "nested 200 deep": b"[" * 200 + b"]" * 200,
    "nested 500 000 deep": b"[" * 500_000 + b"]" * 500_000,
    "over the limit": b'{"a": "' + b"x" * MiB + b'"}',  # 1 MiB + 10 bytes
}


@dataclass(frozen=True)
class BodyOperation:
    method: str
    path: str  # the template, e.g. /api/v1/videos/{video_id}
    content_type: str
    fields: list[str]  # the body's properties


def body_operations(spec: dict[str, Any]) -> list[BodyOperation]:
    found = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for content_type, media in operation.get("requestBody", {}).get("content", {}).items():
                schema = media["schema"]
                if "$ref" in schema:
                    schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
                fields = list(schema.get("properties", {}))
                found.append(BodyOperation(method.upper(), path, content_type, fields))
    return found


def sentinel_bodies(fields: list[str]) -> list[dict[str, Any]]:
    """The sentinel in every field: as itself, too long, in a list, and as an unknown key's
    value, so each field's every kind of error is asked for."""
    return [
        dict.fromkeys(fields, SENTINEL),
        dict.fromkeys(fields, SENTINEL * 600),
        {field: [SENTINEL] for field in fields},
        {"unknown": SENTINEL, **{field: {"$ne": SENTINEL} for field in fields}},
    ]


def test_hostile_bodies_on_every_route_that_takes_one(api: Api, signup: Signup) -> None:
    token = signup()
    video_ids = real_videos(api, token)
    with api.client(token) as client:
        spec = client.get("/openapi.json").json()
        operations = body_operations(spec)
        assert len(operations) >= 7, operations  # register, login (JSON, form), 4 on videos
        failures = []
        for operation in operations:
            method, content_type = operation.method, operation.content_type
            url = operation.path.replace("{video_id}", video_ids[1])
            where = f"{method} {operation.path} {content_type}"
            for name, raw in HOSTILE_BODIES.items():
                try:
                    answer = client.request(method, url, content=raw,
                                            headers={"Content-Type": content_type})  # fmt: skip
                except httpx.TransportError as exc:
                    failures.append(f"{where} {name}: no answer ({exc!r})")
                    continue
                if not 400 <= answer.status_code < 500:
                    failures.append(f"{where} {name}: {answer.status_code} {answer.text[:300]}")
            for body in sentinel_bodies(operation.fields):
                if content_type == "application/json":
                    answer = client.request(method, url, json=body)
                else:
                    form = {key: str(value) for key, value in body.items()}
                    answer = client.request(method, url, data=form)
                if answer.status_code >= 500 or (
                    answer.status_code >= 400 and SENTINEL.lower() in answer.text.lower()
                ):
                    failures.append(f"{where}: {answer.status_code} {answer.text[:300]}")
    assert not failures, "\n".join(failures)
