"""Who may see and do what: tokens, ownership, rooms, injection, upload policy and checks."""

import base64
import json
import time
import uuid
from typing import Any

import httpx
import jwt
import pytest
import socketio
from helpers import Api, Signup, serve
from hlsforge_dev import VIDEOTRANSCODES, EmulatedCluster
from pymongo.database import Database

from transcode_api.main import create_app
from transcode_api.security import TokenIssuer
from transcode_api.settings import ApiSettings

VIDEOS = "/api/v1/videos"
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(32)


def new_video(client: httpx.Client, size: int = 1000, **fields: Any) -> dict[str, Any]:
    body = {"title": "t", "filename": "clip.mp4", "contentType": "video/mp4", "size": size}
    response = client.post(VIDEOS, json=body | fields)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def upload(ticket: dict[str, Any], data: bytes, content_type: str = "video/mp4") -> None:
    response = httpx.post(ticket["url"], data=ticket["fields"],
                          files={"file": ("clip.mp4", data, content_type)})  # fmt: skip
    assert response.status_code in (200, 204), response.text


def user_id(token: str, api: Api) -> str:
    return TokenIssuer.from_settings(api.settings).user_id(token)


# --- tokens ------------------------------------------------------------------------------------


def forged_tokens(api: Api, subject: str) -> dict[str, str]:
    settings = api.settings
    secret = settings.jwt_secret.get_secret_value()
    now = int(time.time())
    claims = {"sub": subject, "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
              "iat": now, "exp": now + 600}  # fmt: skip
    valid = jwt.encode(claims, secret, algorithm="HS256")
    header, payload, signature = valid.split(".")
    other_payload = base64.urlsafe_b64encode(
        json.dumps(claims | {"sub": "someone-else"}).encode()
    ).rstrip(b"=").decode()  # fmt: skip
    issuer = TokenIssuer.from_settings(settings)
    return {
        "tampered payload": f"{header}.{other_payload}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[::-1]}",
        "expired": jwt.encode(claims | {"iat": now - 120, "exp": now - 60}, secret, "HS256"),
        "alg none": jwt.encode(claims, "", algorithm="none"),
        "other algorithm": jwt.encode(claims, secret, algorithm="HS512"),
        "wrong audience": jwt.encode(claims | {"aud": "another-api"}, secret, "HS256"),
        "wrong issuer": jwt.encode(claims | {"iss": "evil"}, secret, "HS256"),
        "wrong secret": jwt.encode(claims, "x" * 40, "HS256"),
        "no expiry": jwt.encode({k: v for k, v in claims.items() if k != "exp"}, secret, "HS256"),
        "playback token": issuer.playback_token(subject, 600),
        "not a jwt": "abc.def.ghi",
    }


def test_bad_tokens_answer_401(api: Api, signup: Signup) -> None:
    token = signup()
    subject = user_id(token, api)
    with api.client(token) as client:
        assert client.get("/api/v1/auth/me").status_code == 200
    for name, forged in forged_tokens(api, subject).items():
        with api.client(forged) as client:
            response = client.get("/api/v1/auth/me")
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer"
    with api.client() as client:
        assert client.get(VIDEOS).status_code == 401


def test_accounts(api: Api, database: Database[dict[str, Any]]) -> None:
    account = {"email": "bob@example.com", "password": "long enough password"}
    with api.client() as client:
        assert (
            client.post("/api/v1/auth/register", json=account | {"role": "admin"}).status_code
            == 422
        )
        assert (
            client.post("/api/v1/auth/register", json=account | {"password": "short"}).status_code
            == 422
        )
        assert client.post("/api/v1/auth/register", json=account).status_code == 201
        duplicate = client.post(
            "/api/v1/auth/register", json=account | {"email": "BOB@example.com"}
        )
        assert duplicate.status_code == 409
        wrong = client.post("/api/v1/auth/login", json=account | {"password": "wrong password!"})
        unknown = client.post("/api/v1/auth/login", json=account | {"email": "nobody@example.com"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()  # no hint whether the email exists
    stored = database["users"].find_one({"email": "bob@example.com"})
    assert stored is not None
    assert stored["passwordHash"].startswith("$argon2")
    assert account["password"] not in json.dumps(stored, default=str)


def test_placeholder_secrets_refuse_to_start(api_settings: ApiSettings) -> None:
    fields = api_settings.model_dump() | {"jwt_secret": "changethis"}
    with pytest.raises(ValueError, match="HLSFORGE_JWT_SECRET"):
        ApiSettings(**fields)
    with pytest.raises(ValueError, match="HLSFORGE_SERVICE_TOKEN"):
        ApiSettings(**(api_settings.model_dump() | {"service_token": "short"}))
    assert ApiSettings(**fields | {"dev_mode": True}).dev_mode


# --- ownership ---------------------------------------------------------------------------------


def test_another_users_video_is_not_found_everywhere(
    api: Api, signup: Signup, cluster: EmulatedCluster, database: Database[dict[str, Any]]
) -> None:
    with api.client(signup()) as owner:
        video = new_video(owner)["video"]
    attempts = [
        ("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/complete"),
        ("GET", "/playback"), ("POST", "/upload/parts"), ("GET", "/upload/parts"),
        ("POST", "/upload/complete"), ("DELETE", "/upload"),
    ]  # fmt: skip
    bodies = {"PATCH": {"title": "mine now"}, "/upload/parts": {"partNumbers": [1]},
              "/upload/complete": {"parts": [{"partNumber": 1, "etag": "x"}]}}  # fmt: skip
    with api.client(signup()) as stranger:
        for method, suffix in attempts:
            body = bodies.get(suffix) or bodies.get(method)
            url = f"{VIDEOS}/{video['id']}{suffix}"
            response = stranger.request(method, url, json=body if method != "GET" else None)
            assert response.status_code == 404, (method, suffix, response.text)
        assert stranger.get(VIDEOS).json()["total"] == 0
        assert stranger.get(f"/api/v1/public/videos/{video['id']}").status_code == 404
    stored = database["videos"].find_one({"_id": video["id"]})
    assert stored is not None
    assert (stored["title"], stored["phase"]) == ("t", "awaiting_upload")
    assert cluster.list(VIDEOTRANSCODES, "default") == []


def test_socket_rooms_are_for_owners_only(api: Api, signup: Signup) -> None:
    owner_token, stranger_token = signup(), signup()
    with api.client(owner_token) as client:
        video_id = new_video(client)["video"]["id"]
    url = api.url

    def connect(token: object, namespace: str = "/") -> socketio.SimpleClient:
        sock = socketio.SimpleClient()
        sock.connect(url, auth={"token": token}, namespace=namespace, transports=["websocket"],
                     wait_timeout=10)  # fmt: skip
        return sock

    nobody = TokenIssuer.from_settings(api.settings).access_token("0" * 24, 600)  # no such user
    for token in (None, "garbage", forged_tokens(api, user_id(owner_token, api))["expired"],
                  nobody):  # fmt: skip
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(token)
    for token in (owner_token, "x" * 43):  # a user's JWT is not the service token
        with pytest.raises(socketio.exceptions.ConnectionError):
            connect(token, "/internal")

    stranger = connect(stranger_token)
    assert api.settings.service_token is not None
    operator = connect(api.settings.service_token.get_secret_value(), "/internal")
    try:
        for data in ({"videoId": video_id}, {"videoId": {"$ne": None}}, "nonsense", None):
            answer = stranger.call("subscribe", data, timeout=10)
            assert answer == {"ok": False, "error": "video not found"}
        operator.emit("transcode.phase", {"videoId": video_id, "owner": user_id(owner_token, api),
                                          "phase": "Transcoding"})  # fmt: skip
        with pytest.raises(socketio.exceptions.TimeoutError):
            stranger.receive(timeout=1)
    finally:
        stranger.disconnect()
        operator.disconnect()


# --- input -------------------------------------------------------------------------------------


def test_operators_in_input_are_rejected(api: Api, signup: Signup) -> None:
    injections = {"$ne": None}
    with api.client(signup()) as client:
        login = client.post(
            "/api/v1/auth/login", json={"email": injections, "password": injections}
        )
        assert login.status_code == 422
        for field in ("title", "filename", "contentType", "size"):
            body = {"title": "t", "filename": "a.mp4", "contentType": "video/mp4", "size": 5}
            assert client.post(VIDEOS, json=body | {field: injections}).status_code == 422, field
        for smuggled in ({"key": "uploads/other/x.mp4"}, {"bucket": "media"}, {"owner": "x"}):
            body = {"title": "t", "filename": "a.mp4", "contentType": "video/mp4", "size": 5}
            assert client.post(VIDEOS, json=body | smuggled).status_code == 422, smuggled
        assert client.get(VIDEOS, params={"phase": '{"$ne": null}'}).status_code == 422
        assert client.get(VIDEOS, params={"pageSize": 1000}).status_code == 422
        assert client.get(VIDEOS, params={"pageSize": 100}).status_code == 200
        assert client.get(f"{VIDEOS}/{'a' * 24}").status_code == 404
        assert client.get(f"{VIDEOS}/$where").status_code == 422


def test_search_treats_regex_as_text(
    api: Api, signup: Signup, database: Database[dict[str, Any]]
) -> None:
    with api.client(signup()) as client:
        ids = [new_video(client, title=title, visibility="public")["video"]["id"]
               for title in ("Cats at play", "a.*b", "Dogs")]  # fmt: skip
        database["videos"].update_many({"_id": {"$in": ids}}, {"$set": {"phase": "succeeded"}})
        found = client.get("/api/v1/public/videos", params={"q": ".*"}).json()
        assert [item["title"] for item in found["items"]] == ["a.*b"]
        assert found["total"] == 1
        everything = client.get("/api/v1/public/videos").json()
        assert [item["title"] for item in everything["items"]] == ["Dogs", "a.*b", "Cats at play"]
        assert everything["total"] == 3
        cats = client.get("/api/v1/public/videos", params={"q": "cats"}).json()
        assert [item["title"] for item in cats["items"]] == ["Cats at play"]


def test_visibility(api: Api, signup: Signup, database: Database[dict[str, Any]]) -> None:
    with api.client(signup()) as client:
        ids = {v: new_video(client, visibility=v)["video"]["id"]
               for v in ("private", "unlisted", "public")}  # fmt: skip
    database["videos"].update_many({}, {"$set": {"phase": "succeeded"}})
    with api.client() as anonymous:
        listed = anonymous.get("/api/v1/public/videos").json()
        assert [item["id"] for item in listed["items"]] == [ids["public"]]
        status = {
            v: anonymous.get(f"/api/v1/public/videos/{i}").status_code for v, i in ids.items()
        }
    assert status == {"private": 404, "unlisted": 200, "public": 200}


# --- uploads -----------------------------------------------------------------------------------


def test_post_policy_pins_key_size_and_type(api: Api, signup: Signup) -> None:
    token = signup()
    with api.client(token) as client:
        created = new_video(client, size=4321, filename="../../../etc/passwd.MOV",
                            contentType="video/quicktime")  # fmt: skip
    fields = created["upload"]["fields"]
    key = fields["key"]
    assert key == f"uploads/{user_id(token, api)}/{created['video']['id']}/source.mov"
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert {"key": key} in conditions
    assert {"bucket": "uploads"} in conditions
    assert ["content-length-range", 4321, 4321] in conditions
    assert {"Content-Type": "video/quicktime"} in conditions
    assert fields["Content-Type"] == "video/quicktime"
    expires = time.mktime(time.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 0 < expires - time.time() <= api.settings.upload_url_seconds + 5


def test_upload_limits(api: Api, api_settings: ApiSettings, signup: Signup) -> None:
    with api.client(signup()) as client:
        body = {"title": "t", "filename": "a.mp4", "contentType": "video/mp4", "size": 1}
        html = client.post(VIDEOS, json=body | {"contentType": "text/html"})
        assert html.status_code == 422
        assert "not accepted" in html.json()["detail"]
        huge = client.post(VIDEOS, json=body | {"size": api_settings.max_upload_bytes + 1})
        assert huge.status_code == 422
    with serve(create_app(api_settings.model_copy(update={"max_pending_uploads": 2}))) as url:
        limited = Api(url, api_settings)
        with limited.client(signup()) as client:
            assert [client.post(VIDEOS, json=body).status_code for _ in range(3)] == [201, 201, 429]


@pytest.mark.parametrize(("data", "content_type", "problem"), [
    (b"<html>not a video</html>" * 50, "video/mp4", "not a video"),
    (MP4_HEAD + bytes(100), "video/mp4", "declared"),  # not the declared size
    (MP4_HEAD + bytes(968), "video/webm", "declared"),  # not the declared type
])  # fmt: skip
def test_complete_rejects_what_was_not_promised(
    api: Api, signup: Signup, s3: Any, cluster: EmulatedCluster, data: bytes, content_type: str,
    problem: str,
) -> None:  # fmt: skip
    with api.client(signup()) as client:
        created = new_video(client, size=1200)
        video_id, key = created["video"]["id"], created["upload"]["fields"]["key"]
        assert client.post(f"{VIDEOS}/{video_id}/complete").status_code == 409  # nothing yet
        ticket = created["upload"] | {
            "fields": created["upload"]["fields"] | {"Content-Type": content_type}
        }
        upload(ticket, data, content_type)
        rejected = client.post(f"{VIDEOS}/{video_id}/complete")
        assert rejected.status_code == 422
        assert problem in rejected.json()["detail"]
        again = client.post(f"{VIDEOS}/{video_id}/complete")
        assert again.status_code == 409
        assert problem in again.json()["detail"]
        video = client.get(f"{VIDEOS}/{video_id}").json()
    assert video["phase"] == "failed"
    assert problem in video["error"]
    with pytest.raises(s3.exceptions.ClientError):
        s3.head_object(Bucket="uploads", Key=key)  # the object is gone
    assert cluster.list(VIDEOTRANSCODES, "default") == []


def test_delete_removes_resource_objects_and_record(
    api: Api, signup: Signup, s3: Any, cluster: EmulatedCluster
) -> None:
    with api.client(signup()) as client:
        created = new_video(client, size=len(MP4_HEAD) + 1000)
        video_id = created["video"]["id"]
        upload(created["upload"], MP4_HEAD + bytes(1000))
        assert client.post(f"{VIDEOS}/{video_id}/complete").status_code == 202
        s3.put_object(Bucket="media", Key=f"videos/{video_id}/360p/seg_00000.m4s", Body=b"x")
        assert client.delete(f"{VIDEOS}/{video_id}").status_code == 204
        assert client.get(f"{VIDEOS}/{video_id}").status_code == 404
        assert client.delete(f"{VIDEOS}/{video_id}").status_code == 404
    assert cluster.list(VIDEOTRANSCODES, "default") == []
    source = created["upload"]["fields"]["key"]
    assert s3.list_objects_v2(Bucket="uploads", Prefix=source)["KeyCount"] == 0
    # The outputs are the operator's to remove (its finalizer; none runs here), never the API's.
    assert s3.list_objects_v2(Bucket="media", Prefix=f"videos/{video_id}/")["KeyCount"] == 1


def test_requests_carry_ids_and_logs_hide_playback_tokens(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    token = f"secret-{uuid.uuid4().hex}"
    with api.client() as client, caplog.at_level("INFO", logger="transcode_api.access"):
        echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
        invented = client.get("/healthz", headers={"X-Request-ID": "bad id; drop"})
        client.get(f"/api/v1/playback/{token}/master.m3u8")
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(invented.headers["x-request-id"]) == 32
    logged = "\n".join(
        record.getMessage() + str(getattr(record, "fields", ""))
        for record in caplog.records
        if record.name.startswith("transcode_api")  # the API's logs, not the test's client
    )
    assert "/api/v1/playback/{token}/{path:path}" in logged
    assert token not in logged


def test_socket_origins(api_settings: ApiSettings) -> None:
    """Pages of other sites cannot open a live connection with a user's token."""
    settings = api_settings.model_copy(update={"cors_origins": ["https://app.example"]})
    account = {"email": "o@example.com", "password": "long enough 1"}
    with serve(create_app(settings)) as url, Api(url, settings).client() as client:
        client.post("/api/v1/auth/register", json=account)
        token = client.post("/api/v1/auth/login", json=account).json()["access_token"]
        for origin, allowed in ((url, True), ("https://app.example", True),
                                ("https://evil.example", False)):  # fmt: skip
            sock = socketio.SimpleClient(websocket_extra_options={"origin": origin})
            options = {"auth": {"token": token}, "transports": ["websocket"], "wait_timeout": 10}
            if allowed:
                sock.connect(url, **options)
                sock.disconnect()
            else:
                with pytest.raises(socketio.exceptions.ConnectionError):
                    sock.connect(url, **options)
