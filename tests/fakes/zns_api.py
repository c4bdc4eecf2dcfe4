"""A loopback fake of Zalo Notification Service (ZNS), for tests.

:class:`FakeZns` is a :class:`~tests.fakes.zalo_api.FakeZaloOA` (so the OA's token refresh lives on the
same server, as the OA token is what ZNS is called with) that also speaks ZNS as Zalo documents it:

- ``POST /message/template`` with an ``access_token`` header and ``{"phone", "template_id",
  "template_data", "tracking_id", "mode"?}``: HTTP 200 with ``{"error": 0, "message": "Success", "data":
  {"msg_id", "sent_time", "quota": {"dailyQuota", "remainingQuota"}}}`` or a negative ``error`` with
  Zalo's message: -124 for a wrong token, -108 for a phone not in the 84… form, -109 for an unknown
  template, -131 for one not approved, -112 for template data that misses a required parameter or is too
  long, -118 for a phone with no Zalo account, -126 for a development-mode send to a non-tester.
- ``GET /template/info/v2?template_id=`` (``data.listParams``, ``data.status``) and ``GET /template/all``.
- ``GET /rating/get?template_id=&from_time=&to_time=&offset=&limit=`` (``data.total``, ``data.data``).

Tests make it fail on demand (``fail_next_zns``), say a phone is not on Zalo, record ratings customers
give (``rate``), and build webhook events signed the way Zalo signs OA webhooks (``signed_event``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from tests.fakes.zalo_api import FakeZaloOA, ZaloCall, _plain_headers, sign_zalo

#: Zalo's wording for the ZNS errors tests ask for (zalo.cloud/zns/guidelines/handle-error-code)
ZNS_ERROR_MESSAGES = {
    -100: "Unknown error",
    -108: "Phone number invalid",
    -109: "Template ID invalid",
    -112: "Template data invalid",
    -114: "User is inactive, or reject the message, or using an outdated Zalo version, or other internal errors",
    -115: "Out of quota",
    -117: "OA or App does not have permission to access this template",
    -118: "Zalo account not existed",
    -124: "Access token invalid",
    -126: "Phone number is not in development mode's tester list",
    -131: "Template not approved",
    -133: "Sending ZNS at night is not allowed",
    -134: "The phone number reached its daily limit of ZNS",
    -144: "OA has exceeded its daily quota",
}


@dataclass
class FakeTemplate:
    """A template registered in the fake's Zalo account."""

    template_id: str
    params: list[dict[str, Any]]
    status: str = "ENABLE"
    name: str = "CareDesk test template"


@dataclass
class ZnsSentMessage:
    """A template message Zalo accepted."""

    msg_id: str
    phone: str
    template_id: str
    template_data: dict[str, Any]
    tracking_id: str | None
    mode: str | None = None


@dataclass
class _Ratings:
    by_template: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def param(name: str, *, required: bool = True, max_length: int = 30, kind: str = "STRING") -> dict[str, Any]:
    """A ``listParams`` entry as the template info API describes a parameter."""
    return {"name": name, "require": required, "type": kind, "maxLength": max_length, "minLength": 0,
            "acceptNull": not required}


class FakeZns(FakeZaloOA):
    """The OA's token endpoints plus ZNS's template, template info and rating endpoints."""

    thread_name = "fake-zns"

    def __init__(self, **oa: Any):
        super().__init__(**oa)
        self._templates: dict[str, FakeTemplate] = {}
        self._zns_sent: list[ZnsSentMessage] = []
        self._zns_errors: deque[tuple[int, str]] = deque()
        self._not_on_zalo: set[str] = set()
        self._testers: set[str] = set()
        self._ratings = _Ratings()
        self.daily_quota = 500

    def _routes(self, app: web.Application) -> None:
        super()._routes(app)
        app.router.add_post("/message/template", self._send_template)
        app.router.add_get("/template/info/v2", self._template_info)
        app.router.add_get("/template/all", self._template_all)
        app.router.add_get("/rating/get", self._rating_get)

    # -- what tests steer and read -------------------------------------------------------------------

    def add_template(self, template_id: str, params: list[dict[str, Any]], *, status: str = "ENABLE") -> None:
        """Register a template in the OA's ZNS account."""
        with self._lock:
            self._templates[template_id] = FakeTemplate(template_id, params, status)

    def not_on_zalo(self, phone: str) -> None:
        """Say ``phone`` (84…) has no Zalo account: sends to it answer -118."""
        with self._lock:
            self._not_on_zalo.add(phone)

    def add_tester(self, phone: str) -> None:
        """Let development-mode sends reach ``phone``."""
        with self._lock:
            self._testers.add(phone)

    def fail_next_zns(self, error_code: int, *, times: int = 1, message: str | None = None) -> None:
        """Answer the next ``times`` template sends with Zalo's ``error_code`` (HTTP 200, as Zalo does)."""
        text = message or ZNS_ERROR_MESSAGES.get(error_code, f"Error {error_code}")
        with self._lock:
            self._zns_errors.extend([(error_code, text)] * times)

    def zns_sent(self, phone: str | None = None) -> list[ZnsSentMessage]:
        """Template messages Zalo accepted, optionally to one phone."""
        with self._lock:
            sent = list(self._zns_sent)
        return [message for message in sent if phone is None or message.phone == phone]

    def rate(self, message: ZnsSentMessage, stars: int, *, note: str = "", feedbacks: list[str] | None = None,
             at: datetime | None = None) -> dict[str, Any]:
        """The customer rates a message sent with a rating template (at ``at``, default now): kept for the
        rating API; returns the ``message`` of the matching ``user_feedback`` event."""
        submitted = str(int(at.timestamp() * 1000) if at is not None else time.time_ns() // 1_000_000)
        with self._lock:
            self._ratings.by_template.setdefault(message.template_id, []).append({
                "note": note, "rate": stars, "submitDate": submitted, "msgId": message.msg_id,
                "feedbacks": feedbacks or [], "trackingId": message.tracking_id})
        return {"msg_id": message.msg_id, "rate": stars, "note": note, "feedbacks": feedbacks or [],
                "submit_time": submitted, "tracking_id": message.tracking_id}

    def signed_event(self, event_name: str, message: dict[str, Any], *, oa_secret_key: str,
                     app_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        """A ZNS webhook event and the headers Zalo sends it with (signed as OA events are)."""
        timestamp = str(time.time_ns() // 1_000_000)
        app = app_id or self.app_id
        event = {"app_id": app, "oa_id": self.oa_id, "event_name": event_name, "timestamp": timestamp,
                 "sender": {"id": self.oa_id}, "recipient": {"id": "zns-user"}, "message": message}
        body = json.dumps(event).encode()
        return body, {"X-ZEvent-Signature": sign_zalo(app, body, timestamp, oa_secret_key),
                      "Content-Type": "application/json"}

    # -- HTTP ----------------------------------------------------------------------------------------

    def _token_ok(self, request: web.Request) -> bool:
        with self._lock:
            return request.headers.get("access_token") == self._access_token and not self._access_token_expired

    async def _send_template(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        self._record(ZaloCall("zns", _plain_headers(request), body))
        await self._maybe_delay("zns")
        if (failure := self._next_http_failure("zns")) is not None:
            return web.Response(status=failure.status, text=failure.body, content_type="text/html")
        if not self._token_ok(request):
            return _zns_error(-124)
        with self._lock:
            scheduled = self._zns_errors.popleft() if self._zns_errors else None
        if scheduled is not None:
            return _zns_error(*scheduled)
        phone = str(body.get("phone", ""))
        if not (phone.startswith("84") and len(phone) == 11 and phone.isdigit()):
            return _zns_error(-108)
        with self._lock:
            template = self._templates.get(str(body.get("template_id", "")))
            not_on_zalo = phone in self._not_on_zalo
            tester = phone in self._testers
        if template is None:
            return _zns_error(-109)
        if template.status != "ENABLE":
            return _zns_error(-131)
        data = body.get("template_data")
        if not isinstance(data, dict):
            return _zns_error(-112)
        for spec in template.params:
            value = data.get(spec["name"])
            if spec["require"] and (value is None or str(value) == ""):
                return _zns_error(-112, f"Template data invalid: {spec['name']} is required")
            if value is not None and len(str(value)) > spec["maxLength"]:
                return _zns_error(-112, f"Template data invalid: {spec['name']} is longer than {spec['maxLength']}")
        if body.get("mode") == "development" and not tester:
            return _zns_error(-126)
        if not_on_zalo:
            return _zns_error(-118)
        msg_id = secrets.token_hex(16)
        with self._lock:
            self._zns_sent.append(ZnsSentMessage(msg_id, phone, template.template_id, dict(data),
                                                 body.get("tracking_id"), body.get("mode")))
            remaining = self.daily_quota - len(self._zns_sent)
        return web.json_response({"error": 0, "message": "Success", "data": {
            "msg_id": msg_id, "sent_time": str(time.time_ns() // 1_000_000),
            "quota": {"dailyQuota": str(self.daily_quota), "remainingQuota": str(remaining)}}})

    async def _template_info(self, request: web.Request) -> web.Response:
        self._record(ZaloCall("template_info", _plain_headers(request), dict(request.query)))
        if (failure := self._next_http_failure("template_info")) is not None:
            return web.Response(status=failure.status, text=failure.body, content_type="text/html")
        if not self._token_ok(request):
            return _zns_error(-124)
        with self._lock:
            template = self._templates.get(request.query.get("template_id", ""))
        if template is None:
            return _zns_error(-109)
        return web.json_response({"error": 0, "message": "Success", "data": {
            "templateId": int(template.template_id), "templateName": template.name, "status": template.status,
            "listParams": template.params, "listButtons": [], "timeout": 7200000, "previewUrl": "",
            "templateQuality": "HIGH", "templateTag": "TRANSACTION", "price": "200"}})

    async def _template_all(self, request: web.Request) -> web.Response:
        self._record(ZaloCall("template_all", _plain_headers(request), dict(request.query)))
        if not self._token_ok(request):
            return _zns_error(-124)
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 100))
        with self._lock:
            templates = list(self._templates.values())
        page = [{"templateId": int(t.template_id), "templateName": t.name, "createdTime": 1767225600000,
                 "status": t.status, "templateQuality": "HIGH"} for t in templates[offset:offset + limit]]
        return web.json_response({"error": 0, "message": "Success", "data": page,
                                  "metadata": {"total": len(templates)}})

    async def _rating_get(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self._record(ZaloCall("rating", _plain_headers(request), query))
        if not self._token_ok(request):
            return _zns_error(-124)
        try:
            since, until = int(query["from_time"]), int(query["to_time"])
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 100))
        except (KeyError, ValueError):
            return _zns_error(-112, "from_time, to_time, offset and limit must be numbers")
        with self._lock:
            given = [rating for rating in self._ratings.by_template.get(query.get("template_id", ""), [])
                     if since <= int(rating["submitDate"]) <= until]
        return web.json_response({"error": 0, "message": "Success",
                                  "data": {"total": len(given), "data": given[offset:offset + limit]}})


def _zns_error(code: int, message: str | None = None) -> web.Response:
    return web.json_response({"error": code, "message": message or ZNS_ERROR_MESSAGES.get(code, f"Error {code}")})
