"""WeCom, DingTalk and Feishu robots against a loopback receiver that checks what the real ones check: the
signature (DingTalk: ``timestamp`` + ``sign`` in the query; Feishu: in the body), the message type and body
(markdown, Chinese with the English beside, the one-tap link) and the ``@`` mentions. A receiver that refuses
the signature (errcode) makes a failed delivery, retried."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.alerts.ackpage import link_maker
from monitor.alerts.delivery import Delivery
from monitor.alerts.outbox import messages
from monitor.alerts.rules import AlertRules, rules_from_mapping
from monitor.events import parse_event
from monitor.service import Service
from monitor.settings import AlertSettings
from monitor.storage import Database
from tests.alerts.builders import alerting_service
from tests.alerts.receivers import Request, receiver

DING_SECRET = "SECdingtalk-test-secret"
FEISHU_SECRET = "feishu-test-secret"
PHONE = "13800000001"


def verify(req: Request) -> tuple[int, Any]:
    """What the vendors' servers check, as far as signatures go."""
    now_ms = time.time() * 1000
    if req.path == "/ding":
        ts, sign = req.query.get("timestamp", ""), req.query.get("sign", "")
        expected = base64.b64encode(
            hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
        ).decode()
        if req.query.get("access_token") != "T0KEN" or sign != expected or abs(now_ms - int(ts)) > 3_600_000:
            return 200, {"errcode": 310000, "errmsg": "sign not match"}
    if req.path == "/feishu":
        body = req.json
        ts = body.get("timestamp", "0")
        expected = base64.b64encode(
            hmac.new(f"{ts}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()
        ).decode()
        if body.get("sign") != expected or abs(now_ms / 1000 - int(ts)) > 3600:
            return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
        return 200, {"code": 0, "msg": "success"}
    if req.path == "/wecom" and req.query.get("key") != "K3Y":
        return 200, {"errcode": 93000, "errmsg": "invalid webhook url"}
    return 200, {"errcode": 0, "errmsg": "ok"}


def rules(url: str, ding_secret: str = DING_SECRET) -> AlertRules:
    return rules_from_mapping(
        {
            "escalation": {3: [{"role": "crew", "after_s": 0}]},
            "default_route": {"roles": {"crew": ["wecom", "ding", "feishu"]}},
            "targets": {
                "wecom": {"kind": "wecom", "url": f"{url}/wecom?key=K3Y", "mentions": [PHONE]},
                "ding": {
                    "kind": "dingtalk",
                    "url": f"{url}/ding?access_token=T0KEN",
                    "secret": ding_secret,
                    "mentions": [PHONE],
                },
                "feishu": {
                    "kind": "feishu",
                    "url": f"{url}/feishu",
                    "secret": FEISHU_SECRET,
                    "mentions": ["ou_0123abcd"],
                },
            },
        }
    )


async def open_incident(db: Database, alert_rules: AlertRules) -> tuple[Service, Delivery]:
    now = datetime.now(UTC).replace(microsecond=0)  # robots check timestamps against their own clock
    links = link_maker("s", "http://127.0.0.1:8080", timedelta(hours=24))
    service, hook = await alerting_service(db, alert_rules, lambda: now, links)
    event = parse_event({"type": "state", "at": (now - timedelta(minutes=1)).isoformat(), "node": "CPE-0003",
                         "state": "down"})
    await service.ingest([("test", event)], source="test")
    delivery = Delivery(db, alert_rules, AlertSettings(backoff_s=1), hook=hook, clock=lambda: now)
    return service, delivery


async def test_three_robots_signed_bilingual_with_mentions(sqlite_db: Database) -> None:
    with receiver() as rec:
        rec.answer = verify
        _service, delivery = await open_incident(sqlite_db, rules(rec.url))
        result = await delivery.round()
        await delivery.close()
        assert (result.sent, result.failed) == (3, 0)
        # WeCom: the markdown message, then a text message that @-mentions the phone (markdown cannot).
        wecom = rec.bodies("/wecom")
        assert [b["msgtype"] for b in wecom] == ["markdown", "text"]
        content = wecom[0]["markdown"]["content"]
        assert "三级 新故障 / Level 3 New incident" in content and "离线路数 Channels offline: 9" in content
        assert "[一键确认 Acknowledge](http://127.0.0.1:8080/ack/" in content
        assert wecom[1]["text"]["mentioned_mobile_list"] == [PHONE]
        # DingTalk: markdown with @phone in the text and in at.atMobiles; signed in the query (checked above).
        [ding] = rec.bodies("/ding")
        assert ding["msgtype"] == "markdown" and ding["at"] == {"atMobiles": [PHONE], "isAtAll": False}
        assert f"@{PHONE}" in ding["markdown"]["text"] and "新故障" in ding["markdown"]["title"]
        # Feishu: an interactive card with a markdown element that @-mentions the user id; signed in the body.
        [feishu] = rec.bodies("/feishu")
        assert feishu["msg_type"] == "interactive"
        md = feishu["card"]["elements"][0]["content"]
        assert "<at id=ou_0123abcd></at>" in md and "响应剩余 Response left" in md
        assert feishu["card"]["header"]["title"]["content"].startswith("【slawatch】三级 新故障")


async def test_a_refused_signature_is_a_failed_delivery(sqlite_db: Database) -> None:
    with receiver() as rec:
        rec.answer = verify
        _service, delivery = await open_incident(sqlite_db, rules(rec.url, ding_secret="SECwrong"))
        result = await delivery.round()
        await delivery.close()
        assert (result.sent, result.failed) == (2, 1)
        [ding] = [m for m in await messages(sqlite_db) if m.target == "ding"]
        assert ding.status == "pending" and ding.attempts == 1
        assert "dingtalk robot refused the message: 310000 sign not match" in (ding.last_error or "")
