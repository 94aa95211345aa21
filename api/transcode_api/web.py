"""The web app: its static files at `/`, the contract's facts it uses at `/contract.js`, and
hls.js and socket.io-client at `/vendor/`.

The page, its script and its style ship in the package (`transcode_api/web/`). The two
third-party scripts come from the npm registry: `make setup` runs `npm ci` there, and the API
image copies their `dist/` files to the same place. A missing one is a 404 that says so, and a
warning at startup; the API itself keeps working.
"""

import logging
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, Response

from transcode_api.settings import ApiSettings
from transcode_api.web_contract import contract_script, web_facts

logger = logging.getLogger(__name__)

WEB_DIR = Path(__file__).parent / "web"
JAVASCRIPT = "text/javascript; charset=utf-8"
ASSETS = {  # URL path: (file under the web directory, media type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", JAVASCRIPT),
    "/app.css": ("app.css", "text/css; charset=utf-8"),
}
CONTRACT = "/contract.js"  # generated from the contract (web_contract.py), loaded before app.js
VENDOR = {  # /vendor/<name>: its file under node_modules
    "hls.min.js": "hls.js/dist/hls.min.js",
    "socket.io.min.js": "socket.io-client/dist/socket.io.min.js",
}
AWS_S3 = "https://*.amazonaws.com"  # presigned URLs when no endpoint is configured
VENDOR_HEADERS = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def storage_origins(settings: ApiSettings) -> list[str]:
    """Where the page uploads to and plays from: the public S3 endpoint (or AWS), a CDN."""
    endpoint = settings.s3_public_endpoint_url or settings.s3_endpoint_url
    origins = [_origin(endpoint) if endpoint else AWS_S3]
    if settings.public_base_url:
        origins.append(_origin(settings.public_base_url))
    return origins


def page_headers(storage: list[str]) -> dict[str, str]:
    """Everything from this origin, except uploads, segments and posters from storage, and
    hls.js's blob: worker and media."""
    extra = " ".join(storage)
    csp = (f"default-src 'self'; script-src 'self'; style-src 'self'; "
           f"connect-src 'self' {extra}; img-src 'self' data: {extra}; "
           f"media-src 'self' blob: {extra}; worker-src 'self' blob:; object-src 'none'; "
           "base-uri 'none'; frame-ancestors 'none'; form-action 'self'")  # fmt: skip
    return {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": csp, "Referrer-Policy": "no-referrer"}  # fmt: skip


def missing_vendor_files(vendor_dir: Path) -> list[Path]:
    return [vendor_dir / relative for relative in VENDOR.values()
            if not (vendor_dir / relative).is_file()]  # fmt: skip


def mount_web(
    app: FastAPI, *, storage: list[str], web_dir: Path = WEB_DIR, vendor_dir: Path | None = None
) -> None:
    """Serve the web app. Add it after the API's routers: `/` and its files come last.

    `storage`: the origins of `storage_origins`; `vendor_dir` holds the npm packages (default:
    `node_modules` next to the static files)."""
    vendor_dir = vendor_dir or web_dir / "node_modules"
    headers = page_headers(storage)
    if missing := missing_vendor_files(vendor_dir):
        logger.warning("web app: %s missing; run `make setup` (npm ci in %s)",
                       ", ".join(map(str, missing)), web_dir)  # fmt: skip

    def asset(url: str, name: str, media_type: str) -> None:
        path = web_dir / name

        def serve() -> Response:
            return FileResponse(path, media_type=media_type, headers=headers)

        app.add_api_route(url, serve, methods=["GET"], include_in_schema=False,
                          name=f"web:{name}")  # fmt: skip

    for url, (name, media_type) in ASSETS.items():
        asset(url, name, media_type)

    script = contract_script(web_facts())

    def contract() -> Response:
        """The contract's facts the web app uses, as a script it loads first."""
        return Response(script, media_type=JAVASCRIPT, headers=headers)

    app.add_api_route(CONTRACT, contract, methods=["GET"], include_in_schema=False,
                      name="web:contract")  # fmt: skip

    def vendor(name: str) -> Response:
        """A third-party script of the web app."""
        relative = VENDOR.get(name)
        if relative is None:
            return JSONResponse({"detail": "not found"}, status_code=404)
        path = vendor_dir / relative
        if not path.is_file():
            logger.error("web app: %s is missing; run `make setup`", path)
            return JSONResponse(
                {"detail": f"{name} is not installed on this server (npm ci in {web_dir})"},
                status_code=404,
            )
        return FileResponse(path, media_type=JAVASCRIPT, headers=VENDOR_HEADERS)

    app.add_api_route("/vendor/{name}", vendor, methods=["GET"], include_in_schema=False,
                      name="web:vendor")  # fmt: skip
