"""The group robots crews in China carry on their phones: WeCom (企业微信), DingTalk (钉钉), Feishu (飞书).

Each robot's webhook URL is configuration (so a test points it at 127.0.0.1). Bodies are markdown in Chinese
with the English beside, and carry the one-tap acknowledgement link.

* WeCom: ``{"msgtype": "markdown", "markdown": {"content": ...}}``. WeCom's markdown cannot ``@`` by phone
  number, so when the target has ``mentions`` a second, short ``text`` message follows with
  ``mentioned_mobile_list``. No signature (the key in the URL is the credential).
* DingTalk: ``{"msgtype": "markdown", "markdown": {"title", "text"}, "at": {"atMobiles", "isAtAll": false}}``
  with ``@phone`` in the text; signed: ``timestamp`` (ms) and ``sign`` =
  ``urlencode(base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")))`` added to the URL's query.
* Feishu: ``{"timestamp", "sign", "msg_type": "interactive", "card": {header, elements: [markdown]}}``; signed:
  ``timestamp`` (s) and ``sign`` = ``base64(HMAC-SHA256(key=f"{timestamp}\\n{secret}", msg=b""))`` in the body.
  Feishu ``@`` needs user ids (``ou_...``): its ``mentions`` are ids, written ``<at id=...></at>``.

A robot answers 200 with an error code in the body on refusal (``errcode`` / ``code`` not 0): a failure.

apprise was considered for these three: its WeCom/DingTalk/Feishu plugins post to the vendors' fixed hosts
(their ``notify_url`` is a class constant), so they cannot be pointed at a configured URL or tested on
loopback, and they are synchronous; the three formatters below are small. apprise carries the long tail
(email, SMS gateways, Telegram...: :mod:`monitor.alerts.apprise_sink`), with the same title and body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

from monitor.alerts.outbox import OutboxMessage
from monitor.alerts.rules import Target, TargetKind
from monitor.alerts.webhook import DeliveryError, http_post
from monitor.events import parse_time

__all__ = [
    "RobotSink",
    "dingtalk_body",
    "dingtalk_sign",
    "feishu_body",
    "feishu_sign",
    "markdown",
    "title",
    "wecom_bodies",
]

KIND_TEXT = {
    "opened": ("新故障", "New incident"),
    "level": ("级别升级", "Level raised"),
    "escalation": ("升级通知", "Escalation"),
    "repeat": ("未确认提醒", "Reminder: not acknowledged"),
    "ack": ("已确认", "Acknowledged"),
    "onsite": ("已到场", "On site"),
    "resolved": ("已恢复", "Resolved"),
}
LEVEL_TEXT = {0: ("故障", "Fault"), 1: ("一级", "Level 1"), 2: ("二级", "Level 2"), 3: ("三级", "Level 3")}


def _local(value: str | None, zone: str) -> str:
    if value is None:
        return "—"
    t: datetime = parse_time(value, None, "time")
    try:
        return t.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
    except (KeyError, ValueError):
        return value


def _duration(seconds: int | None) -> str:
    if seconds is None:
        return "—"
    over = seconds < 0
    s = abs(seconds)
    text = f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"已超时 overdue {text}" if over else text


def title(p: Mapping[str, Any]) -> str:
    """``【slawatch】二级 新故障 / Level 2 New incident: SCOPE``."""
    zh_kind, en_kind = KIND_TEXT.get(p["kind"], (p["kind"], p["kind"]))
    zh_level, en_level = LEVEL_TEXT.get(p["level"], (str(p["level"]), str(p["level"])))
    return f"【slawatch】{zh_level} {zh_kind} / {en_level} {en_kind}: {p['scope']}"


def markdown(p: Mapping[str, Any], mentions: Sequence[str] = (), *, html: bool = True) -> str:
    """The message body in markdown, each line in Chinese then English (``html``: the alert id in the robots'
    ``<font>`` tag; else plain, for apprise's services, which do not all take HTML)."""
    zone = p.get("timezone", "UTC")
    clocks = p.get("clocks", {})
    lines = [
        f"### {title(p)}",
        f"- 故障编号 Incident: {p['incident']}",
        f"- 范围 Scope: {p['scope']}（区域 Area: {p['area']}）",
        f"- 离线路数 Channels offline: {p['channels_offline']}（峰值 peak {p['peak']}）",
        f"- 开始 Start: {_local(p['start'], zone)} ({zone})",
    ]
    if p.get("role"):
        lines.append(f"- 通知对象 Escalated to: {p['role']}")
    if p.get("repeat"):
        lines.append(f"- 第 {p['repeat']} 次提醒 Reminder no. {p['repeat']}")
    if p.get("ack"):
        lines.append(f"- 确认 Acknowledged: {_local(p['ack'], zone)} {p.get('ack_by') or ''}".rstrip())
    if p.get("onsite"):
        lines.append(f"- 到场 On site: {_local(p['onsite'], zone)} {p.get('onsite_by') or ''}".rstrip())
    if p.get("end"):
        lines.append(f"- 恢复 Resolved: {_local(p['end'], zone)}")
    else:
        lines.append(f"- 响应剩余 Response left: {_duration(clocks.get('response_left_s'))}")
        lines.append(f"- 恢复剩余 Recovery left: {_duration(clocks.get('recovery_left_s'))}")
        lines.append(f"- 到场修复剩余 Restore left: {_duration(clocks.get('restore_left_s'))}")
    links = p.get("links", {})
    if links.get("ack") and p.get("open", True) and not p.get("ack"):
        lines.append(f"\n[一键确认 Acknowledge]({links['ack']})")
    if mentions:
        lines.append(" ".join(mentions))
    alert = f"alert {p['alert_id']}"
    lines.append(f"\n<font color=\"comment\">{alert}</font>" if html else f"\n{alert}")
    return "\n".join(lines)


def wecom_bodies(p: Mapping[str, Any], mentions: Sequence[str]) -> list[dict[str, Any]]:
    """The markdown message, then (when there are phones to ``@``) a text message mentioning them."""
    bodies: list[dict[str, Any]] = [{"msgtype": "markdown", "markdown": {"content": markdown(p)}}]
    if mentions:
        bodies.append(
            {
                "msgtype": "text",
                "text": {
                    "content": f"请处理 please handle: {title(p)} ({p['alert_id']})",
                    "mentioned_mobile_list": list(mentions),
                },
            }
        )
    return bodies


def dingtalk_sign(secret: str, timestamp: str) -> str:
    """URL-encoded base64 HMAC-SHA256 of ``timestamp\\nsecret`` under ``secret``."""
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode())


def dingtalk_body(p: Mapping[str, Any], mentions: Sequence[str]) -> dict[str, Any]:
    return {
        "msgtype": "markdown",
        "markdown": {"title": title(p), "text": markdown(p, [f"@{m}" for m in mentions])},
        "at": {"atMobiles": list(mentions), "isAtAll": False},
    }


def feishu_sign(secret: str, timestamp: str) -> str:
    """base64 HMAC-SHA256 of the empty message under the key ``timestamp\\nsecret``."""
    digest = hmac.new(f"{timestamp}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_body(p: Mapping[str, Any], mentions: Sequence[str]) -> dict[str, Any]:
    template = "green" if p["kind"] == "resolved" else ("red" if p["level"] == 1 else "orange")
    return {
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": True},
            "header": {"title": {"tag": "plain_text", "content": title(p)}, "template": template},
            "elements": [
                {"tag": "markdown", "content": markdown(p, [f"<at id={m}></at>" for m in mentions])}
            ],
        },
    }


def _check_answer(kind: TargetKind, answer: bytes) -> None:
    try:
        data = json.loads(answer or b"{}")
    except ValueError:
        return
    if not isinstance(data, dict):
        return
    code = data.get("errcode", data.get("code", data.get("StatusCode", 0)))
    if code not in (0, None):
        message = data.get("errmsg", data.get("msg", ""))
        raise DeliveryError(f"{kind.value} robot refused the message: {code} {message}")


class RobotSink:
    """Formats and posts to one WeCom, DingTalk or Feishu robot."""

    def __init__(self, target: Target, timeout: float = 10.0) -> None:
        if target.kind not in (TargetKind.WECOM, TargetKind.DINGTALK, TargetKind.FEISHU):
            raise ValueError(f"target {target.name} is not a robot")
        self.target = target
        self.timeout = timeout

    async def send(self, message: OutboxMessage) -> None:
        t = self.target
        p = message.payload
        headers = {"X-Slawatch-Alert-Id": message.alert_id}
        if t.kind is TargetKind.WECOM:
            for body in wecom_bodies(p, t.mentions):
                _check_answer(t.kind, await http_post(t.url, body, headers, self.timeout))
        elif t.kind is TargetKind.DINGTALK:
            url = t.url
            if t.secret:
                ts = str(int(time.time() * 1000))
                url = f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={dingtalk_sign(t.secret, ts)}"
            _check_answer(t.kind, await http_post(url, dingtalk_body(p, t.mentions), headers, self.timeout))
        else:
            body = feishu_body(p, t.mentions)
            if t.secret:
                ts = str(int(time.time()))
                body = {"timestamp": ts, "sign": feishu_sign(t.secret, ts), **body}
            _check_answer(t.kind, await http_post(t.url, body, headers, self.timeout))

    async def close(self) -> None:
        return None
