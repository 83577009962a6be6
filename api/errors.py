"""Error responses: every error the API returns is a problem document (RFC 9457, ``application/problem+json``)
with slawatch's own members ``error`` (the message), ``where`` and ``field``::

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422, "detail": message,
     "error": message, "where": "request line 3", "field": "points"}

``where`` and ``field`` are present when known (``request line 3`` / ``type``, ``query`` / ``as_of``).

    InputError (InventoryError, EventError, PolicyError, ContractError)  -> 422
    StorageError                                                          -> 503
    ApiError (raised by the API itself: 401, 403, 404, 413, 422)          -> its status
    BodyTooLarge (a request body over its limit, api.limits)              -> 413
    framework errors (unknown route, bad query parameter, bad body)       -> their status, same shape
    anything else (a bug)                                                 -> 500, same shape, logged
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.errors import InputError, StorageError

log = logging.getLogger("slawatch.api")

PROBLEM_JSON = "application/problem+json"


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


class BodyTooLarge(StarletteHTTPException):
    """A request body larger than its limit (413). An HTTPException so that FastAPI's own body reading passes
    it through unchanged; raised by :class:`api.limits.BodyLimit` while the body streams in."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes; nothing stored")
        self.limit = limit


def error_body(message: str, where: str | None = None, field: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"error": message}
    if where is not None:
        body["where"] = where
    if field is not None:
        body["field"] = field
    return body


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _text(value: str | None) -> Any:
    """``value`` encodable as UTF-8: a lone surrogate echoed from the request is written as its escape."""
    return None if value is None else value.encode("utf-8", "backslashreplace").decode("utf-8")


def problem(
    status: int,
    message: str,
    where: str | None = None,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The problem response for ``status``: RFC 9457 members and ``error``/``where``/``field``."""
    message, where, field = _text(message), _text(where), _text(field)
    body = {"type": "about:blank", "title": _title(status), "status": status, "detail": message}
    body.update(error_body(message, where, field))
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_JSON)


def _input_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InputError)
    return problem(422, exc.message, exc.where, exc.field)


def _storage_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("storage error", extra={"path": request.url.path, "error": str(exc)})
    return problem(503, str(exc))


def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return problem(exc.status, exc.message, exc.where, exc.field, exc.headers)


def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, BodyTooLarge):  # the rest of the body is not read: the connection closes after this
        return problem(413, str(exc.detail), "request body", headers={"Connection": "close"})
    return problem(exc.status_code, str(exc.detail), headers=exc.headers)


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors: Sequence[Any] = exc.errors()
    first: Mapping[str, Any] = errors[0] if errors else {}
    loc = [str(part) for part in first.get("loc", ())]
    where = loc[0] if loc else None
    field = ".".join(loc[1:]) or None
    message = str(first.get("msg", "invalid request"))
    if len(message) > 300:
        message = message[:297] + "..."
    return problem(422, message, where, field)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """The last resort: a bug is a 500 problem (logged with its traceback), never a plain-text page."""
    log.error("unexpected error", exc_info=exc, extra={"path": request.url.path})
    return problem(500, "internal error (logged); nothing more is known to the caller")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(StorageError, _storage_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
