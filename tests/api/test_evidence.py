"""Evidence files over the API: upload (raw body) and download, the size limit, and exclusion events naming
an evidence id that must be stored."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from api.routers import evidence
from tests.api.test_maintenance import CST, ClockedApi, clocked_api

PHOTO = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PHOTO_ID = "sha256:" + hashlib.sha256(PHOTO).hexdigest()
NDJSON = {"Content-Type": "application/x-ndjson"}
DOWN = {"type": "state", "at": "2026-03-20T10:00:00+08:00", "node": "CPE-0003", "state": "down"}
OPEN = "CPE-0003@2026-03-20T02:00:00Z"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[ClockedApi]:
    async with clocked_api(tmp_path) as api:
        yield api


async def upload(api: ClockedApi, content: bytes, role: str = "operator", **headers: str) -> Any:
    return await api.client.post(
        "/api/v1/evidence",
        params={"filename": "fibre cut.png"},
        content=content,
        headers={**api.auth(role), **headers},
    )


def exclusion(evidence_id: str) -> dict[str, Any]:
    return {
        "type": "exclusion",
        "at": "2026-03-21T09:00:00+08:00",
        "incident": OPEN,
        "status": "requested",
        "cause": "road works cut the fibre",
        "evidence": evidence_id,
    }


async def post_events(api: ClockedApi, role: str, *events: dict[str, Any]) -> Any:
    body = "".join(json.dumps(e) + "\n" for e in events)
    return await api.client.post("/api/v1/events", content=body, headers={**NDJSON, **api.auth(role)})


async def test_upload_then_download(api: ClockedApi) -> None:
    r = await upload(api, PHOTO)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": PHOTO_ID, "size": len(PHOTO), "media_type": "image/png", "filename": "fibre cut.png"}
    r = await api.get("viewer", f"/api/v1/evidence/{PHOTO_ID}")
    assert r.status_code == 200
    assert r.content == PHOTO
    assert r.headers["content-type"] == "image/png"
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''fibre%20cut.png"
    assert r.headers["x-content-type-options"] == "nosniff"
    audit = await api.service.repo.load_audit(PHOTO_ID)
    assert [(a.actor, a.action) for a in audit] == [("operator-1", "evidence")]
    assert audit[0].detail == {"file": "fibre cut.png", "size": len(PHOTO), "media_type": "image/png"}

    # The declared Content-Type is kept; the same content again is the same file (the first upload's type).
    text = b"signed site report"
    r = await upload(api, text, role="assessor", **{"Content-Type": "text/plain; charset=utf-8"})
    assert r.status_code == 200 and r.json()["media_type"] == "text/plain; charset=utf-8"
    assert (await upload(api, PHOTO, role="admin")).json()["id"] == PHOTO_ID


async def test_who_may_upload_and_unknown_ids(api: ClockedApi) -> None:
    for role in ("viewer", "collector"):
        assert (await upload(api, PHOTO, role=role)).status_code == 403, role
    assert (await api.client.post("/api/v1/evidence", params={"filename": "x"}, content=PHOTO)).status_code == 401
    missing = "sha256:" + "0" * 64
    r = await api.get("viewer", f"/api/v1/evidence/{missing}")
    assert r.status_code == 404 and r.json()["field"] == "evidence_id"
    assert (await api.get("viewer", "/api/v1/evidence/not-an-id")).status_code == 404
    r = await api.client.post("/api/v1/evidence", headers=api.auth("operator"), content=PHOTO)
    assert r.status_code == 422 and r.json()["field"] == "filename"
    r = await upload(api, b"")
    assert r.status_code == 422 and r.json()["where"] == "request body"


async def test_over_the_limit_is_413(api: ClockedApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evidence, "MAX_EVIDENCE_BYTES", 100)
    assert (await upload(api, b"x" * 100)).status_code == 200
    r = await upload(api, b"y" * 101)
    assert r.status_code == 413
    assert "100 bytes" in r.json()["error"]

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(3):
            yield b"z" * 40

    r = await api.client.post(
        "/api/v1/evidence", params={"filename": "z"}, content=chunked(), headers=api.auth("operator")
    )
    assert r.status_code == 413
    assert [a.detail["size"] for a in await api.service.repo.load_audit() if a.detail] == [100]


async def test_exclusion_naming_unknown_evidence_is_refused_whole(api: ClockedApi) -> None:
    api.clock.now = datetime(2026, 3, 20, 10, 0, 30, tzinfo=CST)  # events are received when they happen (R8)
    assert (await post_events(api, "collector", DOWN)).status_code == 200
    api.clock.now = datetime(2026, 3, 21, 9, 10, tzinfo=CST)
    ack = {"type": "ack", "at": "2026-03-21T08:00:00+08:00", "incident": OPEN}
    r = await post_events(api, "operator", ack, exclusion(PHOTO_ID))
    assert r.status_code == 422
    assert r.json()["where"] == "request line 2" and r.json()["field"] == "evidence"
    assert PHOTO_ID in r.json()["error"]
    assert len(await api.service.repo.load_events()) == 1  # the ack was not stored either
    r = await post_events(api, "operator", exclusion("sha256:abc"))
    assert r.status_code == 422 and r.json()["field"] == "evidence"

    assert (await upload(api, PHOTO)).status_code == 200
    r = await post_events(api, "operator", ack, exclusion(PHOTO_ID))
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 2
    # Evidence that is not an id (a written explanation) is not checked.
    r = await post_events(api, "operator", {**exclusion("photos with the site log"), "at": "2026-03-21T09:05:00+08:00"})
    assert r.status_code == 200, r.text
