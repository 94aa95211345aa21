"""The route class of every API router: request bodies are parsed by `bodies.parse_json`.

FastAPI parses a JSON body with `Request.json()`; this request answers it strictly. FastAPI
turns the `JSONDecodeError` raised here into a 422 `json_invalid`, which `validation` words.
"""

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from transcode_api.bodies import MalformedBodyError, parse_json


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = parse_json(await self.body())
            except MalformedBodyError as exc:
                raise json.JSONDecodeError(str(exc), "", 0) from None
        return self._json


class StrictJsonRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
