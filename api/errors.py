"""Error responses: every error the API returns is JSON ``{"error": message, "where": ..., "field": ...}``.

``where`` and ``field`` are present when known (``request line 3`` / ``type``, ``query`` / ``as_of``).

    InputError (InventoryError, EventError, PolicyError, ContractError)  -> 422
    StorageError                                                          -> 503
    ApiError (raised by the API itself: 401, 403, 404, 422)               -> its status
    framework errors (unknown route, bad query parameter)                 -> their status, same shape
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import InputError, StorageError

log = logging.getLogger("slawatch.api")


class ApiError(Exception):
    """An error the API raises itself, with its HTTP status (and headers, e.g. ``WWW-Authenticate``)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        where: str | None = None,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.where = where
        self.field = field
        self.headers = dict(headers or {})


def error_body(message: str, where: str | None = None, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if where is not None:
        body["where"] = where
    if field is not None:
        body["field"] = field
    return body


def _input_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    return JSONResponse(error_body(exc.message, exc.where, exc.field), status_code=422)


def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("storage error", extra={"path": request.url.path, "error": str(exc)})
    return JSONResponse(error_body(str(exc)), status_code=503)


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(
        error_body(exc.message, exc.where, exc.field), status_code=exc.status, headers=exc.headers
    )


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse(error_body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: Sequence[Any] = exc.errors()
    first: Mapping[str, Any] = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else None
    field = ".".join(loc[1:]) or None
    return JSONResponse(error_body(str(first.get("msg", "invalid request")), where, field), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
