"""Every write route of ``/openapi.json`` refuses a request without a token (401) and a viewer's (403), on
SQLite and PostgreSQL, so that a new route cannot be left open; and ``/docs`` works with no internet."""

from __future__ import annotations

import re
from datetime import datetime

from tests.api.conftest import CST, Client

WRITE_METHODS = {"post", "put", "patch", "delete"}
#: Write routes deliberately without a bearer token, each with its reason.
TOKENLESS = {
    # The one-tap acknowledgement page a crew message links to: its signed, expiring, single-incident link is
    # the credential (api/routers/alerts.py), checked before anything is stored.
    ("post", "/ack/{token}"),
}
DUMMY = {
    "contract_id": "default",
    "incident_id": "CPE-0003@2026-03-20T02:00:00Z",
    "month": "2026-03",
    "version": "1",
    "request_id": "m-0000",
    "name": "nobody",
    "node_id": "CPE-0001",
}


async def test_every_write_route_refuses_no_token_and_a_viewer(client: Client) -> None:
    c = client
    paths = (await c.http.get("/openapi.json")).json()["paths"]
    writes = sorted((m, p) for p, ops in paths.items() for m in ops if m in WRITE_METHODS)
    assert ("post", "/api/v1/incidents/{incident_id}/ack") in writes and len(writes) >= 20
    before = (await c.events(), await c.audit())
    checked = 0
    for method, path in writes:
        if (method, path) in TOKENLESS:
            continue
        url = re.sub(r"\{([^}]+)\}", lambda m: DUMMY.get(m.group(1), "x"), path)
        r = await c.http.request(method.upper(), url, json={})
        assert r.status_code == 401, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        r = await c.http.request(method.upper(), url, json={}, headers=c.auth("viewer"))
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        checked += 1
    assert checked == len(writes) - len(TOKENLESS & set(writes))
    assert (await c.events(), await c.audit()) == before


async def test_write_routes_document_their_problems(client: Client) -> None:
    schema = (await client.http.get("/openapi.json")).json()
    assert "Problem" in schema["components"]["schemas"]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            for status, response in op["responses"].items():
                if int(status) >= 400 and (method, path) != ("get", "/healthz"):  # its 503 is its own body
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)


async def test_docs_need_no_internet(client: Client) -> None:
    r = await client.http.get("/docs")
    assert r.status_code == 200
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", r.text)
    urls += re.findall(r"""url:\s*["']([^"']+)["']""", r.text)
    assert any(u.endswith(".js") for u in urls) and any(u.endswith(".css") for u in urls)
    for url in urls:
        assert url.startswith("/"), f"/docs loads {url} from elsewhere"
        got = await client.http.get(url)
        assert got.status_code == 200, url


#: (method, path, body, the roles besides admin that may): each route of this release, tried by every role.
OPEN_INCIDENT = "CPE-0003@2026-03-20T02:00:00Z"
ANY = ("viewer", "collector", "operator", "assessor")
MATRIX: tuple[tuple[str, str, object, tuple[str, ...]], ...] = (
    ("GET", "/api/v1/incidents", None, ANY),
    ("GET", f"/api/v1/incidents/{OPEN_INCIDENT}", None, ANY),
    ("GET", "/api/v1/contracts/default/incidents", None, ANY),
    ("GET", "/api/v1/queue", None, ANY),
    ("GET", "/api/v1/daily/2026-03-20", None, ANY),
    ("GET", "/api/v1/projection", None, ANY),
    ("GET", "/api/v1/inventory", None, ANY),
    ("GET", "/api/v1/inventory/CPE-0003", None, ANY),
    ("GET", "/api/v1/audit", None, ("assessor",)),
    ("GET", "/api/v1/tokens", None, ()),
    ("POST", f"/api/v1/incidents/{OPEN_INCIDENT}/explanation", {"text": "x"}, ("operator",)),
    ("POST", f"/api/v1/incidents/{OPEN_INCIDENT}/ack", {}, ("operator",)),
    ("POST", f"/api/v1/incidents/{OPEN_INCIDENT}/onsite", {}, ("operator",)),
    ("POST", f"/api/v1/incidents/{OPEN_INCIDENT}/exclusion", {"cause": "x"}, ("operator",)),
    ("POST", f"/api/v1/incidents/{OPEN_INCIDENT}/exclusion/reject", {}, ("assessor",)),
    ("POST", f"/api/v1/incidents/{OPEN_INCIDENT}/exclusion/approve", {}, ("assessor",)),
    ("POST", "/api/v1/tokens", {"name": "t", "role": "viewer"}, ()),
)


async def test_every_new_route_by_every_role(client: Client) -> None:
    """Allowed roles are not refused (401/403); the others get 403. Acts that can happen once are tried by
    the allowed roles in turn (409 after the first counts as allowed)."""
    c = client
    await c.state(datetime(2026, 3, 20, 10, 0, tzinfo=CST), "CPE-0003", "down")
    c.clock.now = datetime(2026, 3, 20, 12, 0, tzinfo=CST)
    for method, path, body, allowed in MATRIX:
        for role in (*ANY, "admin"):
            r = await c.http.request(method, path, json=body, headers=c.auth(role))
            if role == "admin" or role in allowed:
                assert r.status_code not in (401, 403), (method, path, role, r.text)
                assert r.status_code < 500, (method, path, role, r.text)
            else:
                assert r.status_code == 403, (method, path, role, r.status_code)
