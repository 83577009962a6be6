"""API tokens, named per person or machine (admin only; ``slawatch token`` does the same from the shell).

    GET    /tokens          the tokens (never their secrets), revoked and expired ones included
    POST   /tokens          {name, role, expires?}: a new token; its secret is in this answer only (201)
    DELETE /tokens/{name}   revoke the unrevoked token of that name (it stops working at once)

``expires`` is a duration from now (``90m``, ``12h``, ``30d``, ``8w``) or an RFC 3339 time (no offset: the
contracts' zone), at most ten years ahead; none: the token does not expire. An expired or revoked token is
refused with 401. Creations and revocations are in the audit log (actions ``token create``, ``token revoke``).
A revocation here takes effect at once; ``slawatch token revoke`` in another process within
:data:`~monitor.storage.token_cache.TOKEN_CACHE_S` (2 s), how long the API keeps a token it found valid.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from api.deps import Caller, ServiceDep, require
from api.errors import ApiError
from api.models import READ, WRITE, TokenCreated, TokenList, problems
from monitor.errors import InputError, StorageError
from monitor.tokens import NAME_RE, parse_expiry

router = APIRouter(tags=["tokens"])

Admin = Annotated[Caller, Depends(require())]
NamePath = Annotated[str, Path(min_length=1, max_length=64, description="the token's name")]


class TokenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_RE.pattern, description="a person's or a machine's name, unique among live tokens")
    role: Literal["viewer", "collector", "operator", "assessor", "admin"]
    expires: str | None = Field(
        default=None, max_length=64, description="a duration (90m, 12h, 30d, 8w) or an RFC 3339 time; none: never"
    )


def _item(row: dict[str, Any], now: datetime, zone: tzinfo | None) -> dict[str, Any]:
    def t(value: datetime | None) -> str | None:
        return None if value is None else (value.astimezone(zone) if zone else value).isoformat()

    expires: datetime | None = row["expires_at"]
    return {
        "name": row["name"],
        "role": row["role"],
        "created_at": t(row["created_at"]),
        "revoked_at": t(row["revoked_at"]),
        "expires_at": t(expires),
        "active": row["revoked_at"] is None and (expires is None or expires > now),
    }


@router.get("/tokens", summary="API tokens (admin)", response_model=TokenList, responses=problems(*READ, 403))
async def list_tokens(service: ServiceDep, _caller: Admin) -> dict[str, Any]:
    now, zone = service.clock(), await service.event_timezone()
    return {"tokens": [_item(r, now, zone) for r in await service.repo.token_records()]}


@router.post(
    "/tokens",
    status_code=201,
    summary="Create an API token (admin)",
    response_model=TokenCreated,
    responses=problems(*WRITE, 409),
)
async def create_token(service: ServiceDep, caller: Admin, body: TokenBody) -> dict[str, Any]:
    now, zone = service.clock(), await service.event_timezone()
    expires_at = None
    if body.expires is not None:
        try:
            expires_at = parse_expiry(body.expires, now, zone)
        except InputError as exc:
            raise ApiError(422, exc.message, where="body", field="expires") from None
    live = {r["name"] for r in await service.repo.token_records() if r["revoked_at"] is None}
    if body.name in live:
        raise ApiError(409, f"a token named {body.name!r} exists; revoke it first", where="body", field="name")
    try:
        secret, created = await service.repo.create_expiring_token(body.name, body.role, expires_at, by=caller.name)
    except StorageError as exc:
        if "already exists" in str(exc):  # created concurrently
            raise ApiError(409, str(exc), where="body", field="name") from None
        raise
    row = {"name": body.name, "role": body.role, "created_at": created, "revoked_at": None, "expires_at": expires_at}
    return {**_item(row, now, zone), "secret": secret}


@router.delete(
    "/tokens/{name}", summary="Revoke an API token (admin)", response_model=TokenList, responses=problems(*WRITE, 404)
)
async def revoke_token(service: ServiceDep, caller: Admin, name: NamePath) -> dict[str, Any]:
    if await service.repo.revoke_token_by(name, caller.name) is None:
        raise ApiError(404, f"no unrevoked token named {name!r}", where="path", field="name")
    now, zone = service.clock(), await service.event_timezone()
    return {"tokens": [_item(r, now, zone) for r in await service.repo.token_records() if r["name"] == name]}
