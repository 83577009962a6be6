"""FastAPI dependencies: the service, the caller (bearer token) and role checks, contract selection.

A caller authenticates with ``Authorization: Bearer <secret>``; the repository maps the secret to a token
name and a role. ``admin`` may do everything; :func:`require` names the other roles an endpoint admits.

    async def endpoint(service: ServiceDep, principal: Principal): ...                 # any valid token
    async def endpoint(caller: Annotated[Caller, Depends(require("operator"))]): ...  # operator or admin
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.errors import ApiError
from monitor.contracts import Contract
from monitor.roles import ADMIN, ROLES
from monitor.service import Service
from monitor.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="an API token: `slawatch token create --role ROLE`")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def get_service(request: Request) -> Service:
    service: Service | None = getattr(request.app.state, "service", None)
    if service is None:  # pragma: no cover - only when the lifespan did not run
        raise ApiError(503, "the service is not started")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def get_settings(request: Request) -> Settings:
    """The settings the app was created with (limits of what the API accepts: SPEC R8–R10)."""
    settings: Settings | None = getattr(request.app.state, "settings", None)
    if settings is None:  # pragma: no cover - create_app always sets them
        raise ApiError(503, "the API has no settings")
    return settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the token's name and its role."""

    name: str
    role: str

    def may(self, roles: frozenset[str]) -> bool:
        return self.role == ADMIN or self.role in roles


async def authenticate(
    service: ServiceDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller of a valid bearer token; 401 without one or with an unknown or revoked one."""
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "missing bearer token (Authorization: Bearer <token>)", headers=_CHALLENGE)
    found = await service.repo.active_token(credentials.credentials, service.clock())
    if found is None:
        raise ApiError(
            401,
            "invalid, revoked or expired token",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    name, role = found
    return Caller(name=name, role=role)


Principal = Annotated[Caller, Depends(authenticate)]


def require(*roles: str) -> Callable[[Caller], Awaitable[Caller]]:
    """A dependency admitting the caller if its role is one of ``roles`` (or admin); 403 otherwise."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles {sorted(unknown)}")
    allowed = frozenset(roles)

    async def check(principal: Principal) -> Caller:
        if not principal.may(allowed):
            names = ", ".join(sorted(allowed | {ADMIN}))
            raise ApiError(403, f"role {principal.role!r} may not do this (needs one of: {names})")
        return principal

    return check


# ---------------------------------------------------------------------- contract selection
async def contract_in_path(service: ServiceDep, contract_id: str) -> Contract:
    """The contract named in the path; 404 when there is none by that id."""
    contracts = await service.contracts()
    for c in contracts:
        if c.id == contract_id:
            return c
    have = ", ".join(c.id for c in contracts)
    raise ApiError(404, f"no contract {contract_id!r} (have {have})", where="path", field="contract_id")


async def sole_contract(service: ServiceDep, request: Request) -> Contract:
    """The only contract, for the routes without a contract id; 422 naming the contract route otherwise."""
    contracts = await service.contracts()
    if len(contracts) == 1:
        return contracts[0]
    path = request.url.path
    rest = path.removeprefix("/api/v1")
    raise ApiError(
        422,
        f"several contracts ({', '.join(c.id for c in contracts)}): use /api/v1/contracts/{{id}}{rest}",
        where="path",
        field="contract_id",
    )


PathContract = Annotated[Contract, Depends(contract_in_path)]
SoleContract = Annotated[Contract, Depends(sole_contract)]
