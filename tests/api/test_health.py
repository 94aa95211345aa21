"""Liveness, readiness and the OpenAPI page."""

from helpers import Api, free_port, serve

from transcode_api.main import create_app
from transcode_api.settings import ApiSettings


def test_ready_when_everything_answers(api: Api) -> None:
    with api.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        checks = {"mongodb": "ok", "s3": "ok", "kubernetes": "ok"}
        assert ready.json() == {"status": "ok", "checks": checks}
        assert client.get("/docs").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/auth/login", "/api/v1/videos", "/api/v1/videos/{video_id}/complete"} <= set(
        paths
    )
    login_body = paths["/api/v1/auth/login"]["post"]["requestBody"]["content"]
    assert set(login_body) == {"application/json", "application/x-www-form-urlencoded"}


def test_not_ready_names_what_is_down(api_settings: ApiSettings) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = api_settings.model_copy(update={"s3_endpoint_url": dead})
    with serve(create_app(settings)) as url:
        live = Api(url, settings)
        with live.client() as client:
            assert client.get("/healthz").status_code == 200
            ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"mongodb": "ok", "s3": "unavailable", "kubernetes": "ok"}
