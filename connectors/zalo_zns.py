"""Zalo Notification Service (ZNS): approved template messages sent to a phone number's Zalo account,
with the OA access token the Zalo OA channel already keeps fresh (``connectors/zalo_oa.py``).

ZNS is outbound only and addressed by phone, not by a chat: it is not a ``ChannelConnector`` of the
registry but a client the care sequence uses as one of its channels (``helpdesk/care/zns.py``).

What this relies on, from Zalo's ZNS documentation (developers.zalo.me/docs/zalo-notification-service,
zalo.cloud/zns/guidelines/handle-error-code) and SDKs that follow it:

- ``POST {api_base}/message/template`` with the header ``access_token`` and the JSON body
  ``{"phone": "84…", "template_id": "…", "template_data": {…}, "tracking_id": "…"}`` (``"mode":
  "development"`` sends to the OA's admins only, free of charge). Zalo answers HTTP 200 with
  ``{"error": 0, "message": "Success", "data": {"msg_id": …, "sent_time": …, "quota": {…}}}`` or a
  negative ``error`` and a ``message``.
- Phones in the international form 84xxxxxxxxx (Zalo also takes 0xxxxxxxxx, but the form is what
  reconciliation and the rating API return, so CareDesk always sends 84…).
- ``GET {api_base}/template/all?offset=…&limit=…``: ``data = [{"templateId", "templateName", "status",
  …}]``, ``metadata.total``.
- ``GET {api_base}/template/info/v2?template_id=…``: ``data.status`` (``ENABLE`` once approved) and
  ``data.listParams``: ``[{"name", "require", "type", "maxLength", "minLength", "acceptNull"}]``.
- ``GET {api_base}/rating/get?template_id=…&from_time=…&to_time=…&offset=…&limit=…`` (times in epoch
  milliseconds): ``data.data = [{"msgId", "rate", "note", "feedbacks": […], "submitDate", "trackingId"}]``
  for service-rating templates ("đánh giá dịch vụ", template type 5).
- Webhook events, signed like the OA's (``X-ZEvent-Signature: mac=sha256(app_id + body + timestamp +
  OA secret key)``): ``user_received_message`` (``message.msg_id``, ``message.delivery_time``) and
  ``user_feedback`` for a rating template (``message.msg_id``, ``message.rate``, ``message.note``,
  ``message.feedbacks``, ``message.submit_time``, ``message.tracking_id``).

How sure each part is (looked up 2026-12): the send endpoint, its header and body fields and the 84…
form were confirmed in SDKs that wrap the API (e.g. @warriorteam/redai-zalo-sdk's ZNS service, which
also lists template type 5 "đánh giá dịch vụ"); codes -100 to -112 (-108 "Phone number invalid",
taking 84xxxx, 0xxxx or the 9 digits a spreadsheet leaves) in zalo.cloud's error table; the rating
fields (rate, note, feedback, submit time, msg_id, tracking_id) and the receipt's delivery_time in
resellers' copies of the API. The remaining codes, the template info and rating paths and the
``user_feedback`` event name follow Zalo's developer documentation as remembered, not re-read: where
the table is ambiguous (the per-phone daily limit and the development-mode refusals have moved between
codes) the mapping says what CareDesk does with a code rather than what Zalo calls it, and an unknown
code is a refusal that falls back to the next channel.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, field_validator

from connectors.base import DeliveryError

logger = logging.getLogger(__name__)

DEFAULT_API_BASE = "https://business.openapi.zalo.me"
SEND_PATH = "/message/template"
TEMPLATE_INFO_PATH = "/template/info/v2"
TEMPLATE_INFO_V1_PATH = "/template/info"
TEMPLATE_LIST_PATH = "/template/all"
RATING_PATH = "/rating/get"
#: the care steps a template may be mapped to: the after-delivery steps, the NPS survey and the reminders
#: from product data (every maintenance reminder shares one template, so does every warranty notice), and
#: "campaign": the template a campaign may send (helpdesk/campaigns/)
CARE_STEPS = ("thank_you", "rating_request", "usage_tips", "check_in", "nps", "maintenance", "warranty_expiry",
              "campaign")
#: what CareDesk can fill a template's parameters with (see ``helpdesk/care/zns.py``)
CAREDESK_VALUES = ("customer_name", "order_code", "product_name", "delivered_date", "shop_name",
                   "order_total", "phone")
#: template parameter names Zalo's sample templates use, and the CareDesk value each takes
COMMON_PARAMETER_NAMES = {
    "customer_name": "customer_name", "name": "customer_name", "ten_khach_hang": "customer_name",
    "order_code": "order_code", "order_id": "order_code", "ma_don_hang": "order_code",
    "product_name": "product_name", "product": "product_name", "ten_san_pham": "product_name",
    "delivered_date": "delivered_date", "delivery_date": "delivered_date", "date": "delivered_date",
    "ngay_giao": "delivered_date", "shop_name": "shop_name", "shop": "shop_name",
    "order_total": "order_total", "total": "order_total", "price": "order_total",
    "phone": "phone", "phone_number": "phone",
}

# -- Zalo's error codes (zalo.cloud/zns/guidelines/handle-error-code) --------------------------------
#: the access token is invalid or expired: renew it once and try again
TOKEN_INVALID = -124
#: the phone number is malformed
PHONE_INVALID = -108
#: a template that is not approved (any more), or that this OA/app may not use
TEMPLATE_REFUSED = frozenset({-109, -117, -131, -135, -145, -146})
#: the template data does not fit the template (should have been caught at configuration)
TEMPLATE_DATA_INVALID = frozenset({-111, -112, -113, -116, -132})
#: the customer refused ZNS messages from this OA on Zalo: CareDesk takes it as an opt-out of all care
USER_REFUSED = -139
#: the customer: not on Zalo, inactive, refusing ZNS, or on too old an app
USER_UNREACHABLE = frozenset({-110, -114, -118, -119, -139, -141})
#: the shop's ZNS balance or daily quota is used up
QUOTA_EXCEEDED = frozenset({-115, -144, -147})
#: the phone reached its daily number of ZNS (any business); tomorrow it may take one again
PHONE_DAILY_LIMIT = frozenset({-134, -1340})
#: development mode sends only to the OA's admins and testers
DEVELOPMENT_MODE_REFUSED = frozenset({-126, -137})
#: Zalo refuses some templates at night (22:00–06:00 Vietnam time)
NIGHT_REFUSED = -133
#: Zalo-side trouble that passes with time
TRANSIENT = frozenset({-100})


class ZnsConfig(BaseModel):
    """ZNS (``CAREDESK_ZNS__*``): which approved template each care step sends, and where Zalo is."""

    #: care step -> ZNS template id (JSON object in the environment, e.g. {"thank_you": "301245"})
    templates: dict[str, str] = {}
    #: template parameter name -> CareDesk value (one of CAREDESK_VALUES), for names the common ones
    #: (COMMON_PARAMETER_NAMES) do not cover
    parameters: dict[str, str] = {}
    api_base: str = DEFAULT_API_BASE
    #: send in Zalo's development mode (to the OA's admins only, not charged)
    development_mode: bool = False
    request_timeout_s: float = 10.0
    #: how often the rating API is asked for ratings given on rating templates (0: never; the
    #: ``user_feedback`` webhook event brings them when the app subscribes to it)
    rating_poll_interval_s: float = 900.0

    @field_validator("templates", mode="before")
    @classmethod
    def _template_ids_as_text(cls, value: Any) -> Any:
        if isinstance(value, dict):
            unknown = sorted(str(step) for step in value if step not in CARE_STEPS)
            if unknown:
                raise ValueError(f"CAREDESK_ZNS__TEMPLATES: unknown care step(s) {unknown}; "
                                 f"the steps are {', '.join(CARE_STEPS)}")
            cleaned = {}
            for step, template_id in value.items():
                text = str(template_id).strip()
                if not text.isdigit():
                    raise ValueError(f"CAREDESK_ZNS__TEMPLATES: the template id of {step} must be Zalo's "
                                     f"numeric template id, got {template_id!r}")
                cleaned[step] = text
            return cleaned
        return value

    @field_validator("parameters")
    @classmethod
    def _known_values(cls, value: dict[str, str]) -> dict[str, str]:
        wrong = sorted(f"{name}={target}" for name, target in value.items() if target not in CAREDESK_VALUES)
        if wrong:
            raise ValueError(f"CAREDESK_ZNS__PARAMETERS: {', '.join(wrong)}: CareDesk can fill in "
                             f"{', '.join(CAREDESK_VALUES)}")
        return value

    @property
    def enabled(self) -> bool:
        """Whether any care step has a template."""
        return bool(self.templates)


# -- phone numbers -----------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\s.\-()/]")


def zns_phone(raw: str) -> str:
    """A Vietnamese mobile number in the form ZNS takes, 84 and nine digits
    (``0901 234 567``, ``+84 90 123 4567``, ``0084901234567`` and Excel's ``901234567`` all give
    ``84901234567``); anything else raises ValueError with the reason."""
    text = _SEPARATORS.sub("", str(raw or ""))
    if text.startswith("+"):
        text = text[1:]
    elif text.startswith("0084"):
        text = text[2:]
    if not text.isdigit():
        raise ValueError(f"{raw!r} is not a phone number (only digits, spaces, dots, dashes and a leading +)")
    if text.startswith("84") and len(text) == 11:
        national = text[2:]
    elif text.startswith("0") and len(text) == 10:
        national = text[1:]
    elif len(text) == 9 and not text.startswith("0"):
        national = text  # a spreadsheet dropped the leading 0
    else:
        raise ValueError(f"{raw!r} is not a Vietnamese mobile number (10 digits starting with 0, or 84 and 9 digits)")
    if national[0] not in "35789":
        raise ValueError(f"{raw!r} is not a Vietnamese mobile number (mobile numbers start 03, 05, 07, 08 or 09)")
    return "84" + national


# -- errors ------------------------------------------------------------------------------------------


class ZnsError(Exception):
    """Zalo refused a ZNS request. ``retryable``: the same send may succeed later (``retry_after``
    seconds from now if known); ``falls_back``: the customer may still be reached on the next channel;
    ``configuration``: the shop must fix something (template, token, quota) before ZNS works again."""

    def __init__(self, reason: str, *, code: int | str | None = None, retryable: bool = False,
                 falls_back: bool = True, configuration: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.retryable = retryable
        self.falls_back = falls_back
        self.configuration = configuration
        self.retry_after = retry_after


def zns_error(code: int, message: str) -> ZnsError:
    """CareDesk's reading of one of Zalo's ZNS error codes."""
    said = f"(Zalo {code}: {message})" if message else f"(Zalo {code})"
    if code == PHONE_INVALID:
        return ZnsError(f"the phone number is not valid for ZNS {said}", code=code)
    if code == USER_REFUSED:
        return ZnsError(f"the customer refused ZNS messages from the shop on Zalo {said}", code=code,
                        falls_back=False)
    if code in USER_UNREACHABLE:
        return ZnsError(f"the customer is not on Zalo, is inactive or does not accept ZNS {said}", code=code)
    if code in PHONE_DAILY_LIMIT:
        return ZnsError(f"this phone reached its daily number of ZNS messages {said}", code=code)
    if code in TEMPLATE_REFUSED:
        return ZnsError(f"the ZNS template is not approved or this OA may not use it {said}", code=code,
                        configuration=True)
    if code in TEMPLATE_DATA_INVALID:
        return ZnsError(f"the template data does not fit the ZNS template {said}", code=code,
                        configuration=True)
    if code in QUOTA_EXCEEDED:
        return ZnsError(f"the shop's ZNS quota or balance is used up {said}", code=code, configuration=True)
    if code in DEVELOPMENT_MODE_REFUSED:
        return ZnsError(f"development mode sends only to the OA's admins and testers {said}", code=code,
                        configuration=True)
    if code == TOKEN_INVALID:
        # even after a renewal: an OA admin must authorise the app again; sends wait for it meanwhile
        return ZnsError(f"the OA access token was refused {said}", code=code, retryable=True, falls_back=False,
                        configuration=True)
    if code == NIGHT_REFUSED:
        return ZnsError(f"Zalo refuses this template at night {said}", code=code, retryable=True,
                        falls_back=False)
    if code in TRANSIENT:
        return ZnsError(f"Zalo could not send it this time {said}", code=code, retryable=True, falls_back=False)
    return ZnsError(f"Zalo refused the ZNS message {said}", code=code)


# -- what Zalo answers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZnsParam:
    """One parameter of a template, as the template info API lists it."""

    name: str
    required: bool
    max_length: int | None = None


@dataclass(frozen=True)
class ZnsTemplate:
    """A registered template: its id, whether Zalo approved it, its parameters."""

    template_id: str
    name: str
    status: str
    params: tuple[ZnsParam, ...]

    @property
    def approved(self) -> bool:
        """Whether Zalo lets the template be sent."""
        return self.status.upper() == "ENABLE"


@dataclass(frozen=True)
class ZnsSent:
    """An accepted send: Zalo's message id, and the quota left today if Zalo said."""

    msg_id: str
    remaining_quota: int | None = None


@dataclass(frozen=True)
class ZnsRating:
    """A rating given on a service-rating template."""

    msg_id: str
    stars: int
    comment: str | None
    submitted_at: datetime | None = None
    tracking_id: str | None = None


@dataclass(frozen=True)
class ZnsReceipt:
    """``user_received_message``: the message reached the customer's phone."""

    msg_id: str
    delivered_at: datetime


def parse_zns_event(event: Mapping[str, Any]) -> ZnsReceipt | ZnsRating | None:
    """A receipt or a rating from a ZNS webhook event; None for other events. Malformed ones raise
    ValueError."""
    name = event.get("event_name")
    if name not in ("user_received_message", "user_feedback"):
        return None
    message = event.get("message")
    if not isinstance(message, dict) or not message.get("msg_id"):
        raise ValueError(f"{name} without message.msg_id")
    msg_id = str(message["msg_id"])
    if name == "user_received_message":
        return ZnsReceipt(msg_id, _moment(message.get("delivery_time") or event.get("timestamp")))
    return _rating(msg_id, message.get("rate"), message.get("note"), message.get("feedbacks"),
                   message.get("submit_time"), message.get("tracking_id"))


def _rating(msg_id: str, rate: Any, note: Any, feedbacks: Any, submitted: Any, tracking: Any) -> ZnsRating:
    try:
        stars = int(rate)
    except (TypeError, ValueError):
        raise ValueError(f"a ZNS rating of {msg_id} without a 1-5 rate: {rate!r}") from None
    if not 1 <= stars <= 5:
        raise ValueError(f"a ZNS rating of {msg_id} with rate {stars}, not 1-5")
    parts = [str(item).strip() for item in (feedbacks or []) if str(item).strip()]
    if note and str(note).strip():
        parts.append(str(note).strip())
    return ZnsRating(msg_id, stars, "; ".join(parts) or None,
                     _moment(submitted) if submitted not in (None, "") else None,
                     str(tracking) if tracking else None)


def _moment(value: Any) -> datetime:
    """Zalo's times: epoch milliseconds (as number or text)."""
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return datetime.now(UTC)


# -- the client --------------------------------------------------------------------------------------


@dataclass(eq=False)
class ZnsClient:
    """Sends templates and reads template info and ratings. ``access_token()`` gives the OA's current
    token and ``renew_access_token(stale)`` a new one (the Zalo OA connector's single-flight refresh)."""

    config: ZnsConfig
    access_token: Callable[[], Awaitable[str]]
    renew_access_token: Callable[[str], Awaitable[str]] | None = None
    _clients: dict[int, httpx.AsyncClient] = field(default_factory=dict)

    async def send_template(self, phone: str, template_id: str, data: Mapping[str, str], *,
                            tracking_id: str) -> ZnsSent:
        """Send one template message to ``phone`` (normalised here); ZnsError if Zalo refuses."""
        try:
            number = zns_phone(phone)
        except ValueError as error:
            raise ZnsError(str(error), code="phone_invalid") from None
        body: dict[str, Any] = {"phone": number, "template_id": template_id, "template_data": dict(data),
                                "tracking_id": tracking_id}
        if self.config.development_mode:
            body["mode"] = "development"
        answer = await self._call("POST", SEND_PATH, json=body)
        data_out = answer.get("data") or {}
        msg_id = data_out.get("msg_id")
        if not msg_id:
            raise ZnsError("Zalo accepted the send but gave no msg_id", code="no_msg_id", retryable=True,
                           falls_back=False)
        quota = (data_out.get("quota") or {}).get("remainingQuota")
        return ZnsSent(str(msg_id), int(quota) if str(quota or "").isdigit() else None)

    async def template_info(self, template_id: str) -> ZnsTemplate:
        """The template's status and parameters."""
        try:
            answer = await self._call("GET", TEMPLATE_INFO_PATH, params={"template_id": template_id})
        except ZnsError as error:
            if error.code != 404:
                raise
            # the first version of the endpoint, which answers the same fields
            answer = await self._call("GET", TEMPLATE_INFO_V1_PATH, params={"template_id": template_id})
        data = answer.get("data") or {}
        params = tuple(
            ZnsParam(str(item.get("name")), bool(item.get("require", True)),
                     int(item["maxLength"]) if str(item.get("maxLength", "")).isdigit() else None)
            for item in data.get("listParams") or [] if isinstance(item, dict) and item.get("name"))
        return ZnsTemplate(str(data.get("templateId", template_id)), str(data.get("templateName", "")),
                           str(data.get("status", "")), params)

    async def list_templates(self) -> list[ZnsTemplate]:
        """Every template registered in the OA's ZNS account (without parameters: ask ``template_info``)."""
        found: list[ZnsTemplate] = []
        offset, limit = 0, 100
        while True:
            answer = await self._call("GET", TEMPLATE_LIST_PATH, params={"offset": offset, "limit": limit})
            page = answer.get("data") or []
            found += [ZnsTemplate(str(item.get("templateId")), str(item.get("templateName", "")),
                                  str(item.get("status", "")), ()) for item in page if isinstance(item, dict)]
            offset += len(page)
            total = (answer.get("metadata") or {}).get("total")
            if len(page) < limit or (isinstance(total, int) and offset >= total):
                return found

    async def ratings(self, template_id: str, since: datetime, until: datetime) -> list[ZnsRating]:
        """Ratings given on ``template_id`` between the two moments (every page)."""
        found: list[ZnsRating] = []
        offset, limit = 0, 100
        while True:
            answer = await self._call("GET", RATING_PATH, params={
                "template_id": template_id, "from_time": int(since.timestamp() * 1000),
                "to_time": int(until.timestamp() * 1000), "offset": offset, "limit": limit})
            page = (answer.get("data") or {}).get("data") or []
            for item in page:
                try:
                    found.append(_rating(str(item.get("msgId", "")), item.get("rate"), item.get("note"),
                                         item.get("feedbacks"), item.get("submitDate"), item.get("trackingId")))
                except ValueError as error:
                    logger.warning("skipping a ZNS rating Zalo returned: %s", error)
            total = (answer.get("data") or {}).get("total")
            offset += len(page)
            if len(page) < limit or (isinstance(total, int) and offset >= total):
                return found

    async def _call(self, method: str, path: str, **request: Any) -> dict[str, Any]:
        try:
            token = await self.access_token()
            answer = await self._request(method, path, token, **request)
            if answer.get("error") == TOKEN_INVALID and self.renew_access_token is not None:
                token = await self.renew_access_token(token)
                answer = await self._request(method, path, token, **request)
        except DeliveryError as error:
            # the OA connector could not give a usable token: the shop's admin must authorise the OA
            # again; until then sends wait rather than fall through to another channel for good
            raise ZnsError(f"no usable Zalo OA access token: {error.reason}", code=TOKEN_INVALID,
                           retryable=True, falls_back=False, configuration=True) from None
        code = answer.get("error")
        if code not in (0, None):
            raise zns_error(int(code), str(answer.get("message") or ""))
        return answer

    async def _request(self, method: str, path: str, token: str, **request: Any) -> dict[str, Any]:
        url = self.config.api_base.rstrip("/") + path
        try:
            response = await self._client().request(method, url, headers={"access_token": token}, **request)
        except httpx.TimeoutException:
            raise ZnsError("Zalo did not answer in time", code="timeout", retryable=True, falls_back=False) from None
        except httpx.HTTPError as error:
            raise ZnsError(f"could not reach Zalo: {type(error).__name__}", code="network", retryable=True,
                           falls_back=False) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise ZnsError(f"Zalo answered HTTP {response.status_code}", code=response.status_code,
                           retryable=True, falls_back=False)
        try:
            answer = response.json()
        except ValueError:
            raise ZnsError(f"Zalo answered HTTP {response.status_code} without JSON", code=response.status_code,
                           retryable=True, falls_back=False) from None
        if not isinstance(answer, dict):
            raise ZnsError("Zalo's answer is not a JSON object", code="bad_answer", retryable=True,
                           falls_back=False)
        return answer

    def _client(self) -> httpx.AsyncClient:
        # one client per event loop: tests and the worker child run their own loops
        loop = id(asyncio.get_running_loop())
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=self.config.request_timeout_s)
            self._clients[loop] = client
        return client

    async def close(self) -> None:
        """Close this loop's HTTP client."""
        client = self._clients.pop(id(asyncio.get_running_loop()), None)
        if client is not None:
            await client.aclose()


def template_problems(step: str, template: ZnsTemplate, parameters: Mapping[str, str]) -> list[str]:
    """What stops ``template`` from serving care ``step``: not approved, or a required parameter
    CareDesk cannot fill (``parameters`` maps extra template names to CareDesk values)."""
    problems = []
    if not template.approved:
        problems.append(f"{step}: template {template.template_id} is {template.status or 'not approved'}, "
                        "not ENABLE (approved) on Zalo")
    for param in template.params:
        if param.required and caredesk_value_for(param.name, parameters) is None:
            problems.append(f"{step}: template {template.template_id} requires parameter {param.name!r}, "
                            f"which CareDesk cannot fill (it fills {', '.join(CAREDESK_VALUES)}; map other "
                            "names with CAREDESK_ZNS__PARAMETERS)")
    return problems


def caredesk_value_for(name: str, parameters: Mapping[str, str]) -> str | None:
    """Which CareDesk value fills the template parameter ``name``, if any."""
    return parameters.get(name) or COMMON_PARAMETER_NAMES.get(name.lower())


def template_data(template: ZnsTemplate, values: Mapping[str, str], parameters: Mapping[str, str]) -> dict[str, str]:
    """The ``template_data`` of one send: each parameter CareDesk can fill, cut to its maximum length."""
    data = {}
    for param in template.params:
        source = caredesk_value_for(param.name, parameters)
        if source is None or not values.get(source):
            continue
        value = str(values[source])
        data[param.name] = value[: param.max_length] if param.max_length else value
    return data


__all__ = ["ZnsClient", "ZnsConfig", "ZnsError", "ZnsRating", "ZnsReceipt", "ZnsSent", "ZnsTemplate",
           "parse_zns_event", "template_data", "template_problems", "zns_phone"]
