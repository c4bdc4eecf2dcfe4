"""The ZNS webhook, and the admin's view of the template mapping.

The webhook: Zalo's reports on template messages (receipts, ratings) for the care they carried.

Zalo signs these events as it signs the OA's (``X-ZEvent-Signature``, see ``connectors/zalo_oa.py``),
so the Zalo OA channel verifies them. They change care rows only, idempotently (a receipt or a rating
recorded twice changes nothing), so they are recorded before the answer rather than queued.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from connectors.base import ConnectorError, WebhookRequest
from connectors.zalo_zns import ZnsConfig, ZnsError, caredesk_value_for, parse_zns_event
from helpdesk.agents.deps import CurrentAdmin
from helpdesk.care.zns import ZnsCare, check_mapping
from helpdesk.care.zns_mapping import MappingRefused, mapping_store, save_mapping
from helpdesk.channels.deps import ConnectorsDep
from helpdesk.core.errors import CareDeskError

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/zalo-zns/events", summary="Receive Zalo's ZNS events (receipts, ratings)")
@router.post("/webhooks/zns", include_in_schema=False)
@router.post("/webhooks/zalo-zns", include_in_schema=False)
async def receive_zns_event(request: Request, connectors: ConnectorsDep) -> JSONResponse:
    """Verify the event with the Zalo OA channel's secret, then record a receipt or a rating."""
    zns = request.app.state.wiring.care.zns
    oa = connectors.get("zalo_oa")
    if zns is None or oa is None:
        return JSONResponse({"detail": "ZNS is not turned on on this server"}, status_code=404)
    body = await request.body()
    try:
        await oa.verify(WebhookRequest(headers=dict(request.headers), body=body, query=dict(request.query_params)))
    except ConnectorError as exc:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)
    try:
        payload = json.loads(body)
        event = parse_zns_event(payload) if isinstance(payload, dict) else None
    except (UnicodeDecodeError, ValueError) as exc:
        return JSONResponse({"detail": f"not a ZNS event: {exc}"}, status_code=400)
    if event is None:
        return JSONResponse({"ok": True, "recorded": "ignored"})
    return JSONResponse({"ok": True, "recorded": await zns.take_event(event)})


class ZnsOff(CareDeskError):
    """ZNS is not configured on this server."""

    status = 404


class ZnsUnavailable(CareDeskError):
    """Zalo cannot be asked now."""

    status = 503


class ZnsParamPublic(BaseModel):
    """One parameter of a template, and the CareDesk value that fills it (None: none can)."""

    name: str
    required: bool
    max_length: int | None
    filled_with: str | None


class ZnsTemplatePublic(BaseModel):
    """A template of the shop's ZNS account."""

    template_id: str
    name: str
    status: str
    mapped_to: list[str] = []
    params: list[ZnsParamPublic] | None = None


class ZnsTemplatesPublic(BaseModel):
    """The shop's ZNS templates and which care step each serves."""

    mapping: dict[str, str]
    #: template parameter name -> CareDesk value, for names the common ones do not cover
    parameters: dict[str, str] = {}
    data: list[ZnsTemplatePublic]
    count: int


class ZnsMappingCheck(BaseModel):
    """A mapping to check before it is configured (CAREDESK_ZNS__TEMPLATES and __PARAMETERS)."""

    templates: dict[str, str | int]
    parameters: dict[str, str] = {}


def _zns_of(request: Request) -> ZnsCare:
    zns = request.app.state.wiring.care.zns
    if zns is None:
        raise ZnsOff("ZNS is not turned on: set CAREDESK_ZNS__TEMPLATES and the Zalo OA channel")
    return zns


@router.get("/api/care/zns/templates", response_model=ZnsTemplatesPublic, tags=["care"])
async def zns_templates(request: Request, admin: CurrentAdmin) -> ZnsTemplatesPublic:
    """The templates registered in the shop's Zalo account, with the care steps mapped to them."""
    zns = _zns_of(request)
    try:
        listed = await zns.client.list_templates()
    except ZnsError as error:
        raise ZnsUnavailable(f"could not list the ZNS templates: {error.reason}") from None
    steps: dict[str, list[str]] = {}
    for step, template_id in zns.mapping.items():
        steps.setdefault(template_id, []).append(step)
    data = []
    for template in listed:
        checked = next((t for t in zns.templates.values() if t.template_id == template.template_id), None)
        params = None if checked is None else [
            ZnsParamPublic(name=p.name, required=p.required, max_length=p.max_length,
                           filled_with=caredesk_value_for(p.name, zns.parameters)) for p in checked.params]
        data.append(ZnsTemplatePublic(template_id=template.template_id, name=template.name, status=template.status,
                                      mapped_to=steps.get(template.template_id, []), params=params))
    return ZnsTemplatesPublic(mapping=zns.mapping, parameters=zns.parameters, data=data, count=len(data))


@router.post("/api/care/zns/templates/check", tags=["care"],
             responses={422: {"description": "the mapping cannot work, with every reason"}})
async def check_zns_mapping(body: ZnsMappingCheck, request: Request, admin: CurrentAdmin) -> JSONResponse:
    """Check a template mapping with Zalo as the start does: 200 if every step's template is approved and
    CareDesk can fill its parameters, else 422 naming each problem."""
    zns = _zns_of(request)
    try:
        config = ZnsConfig(templates=body.templates, parameters=body.parameters)
    except ValidationError as error:
        return JSONResponse({"ok": False, "problems": [e["msg"] for e in error.errors()]}, status_code=422)
    try:
        found, problems = await check_mapping(zns.client, config.templates, config.parameters)
    except ZnsError as error:
        raise ZnsUnavailable(f"could not ask Zalo: {error.reason}") from None
    if problems:
        return JSONResponse({"ok": False, "problems": problems}, status_code=422)
    return JSONResponse({"ok": True, "templates": {
        step: {"template_id": t.template_id, "params": [p.name for p in t.params]} for step, t in found.items()}})


@router.put("/api/care/zns/templates", tags=["care"],
            responses={422: {"description": "the mapping cannot work, with every reason; nothing saved"},
                       503: {"description": "Zalo could not be asked, so the mapping was not checked nor saved"}})
async def save_zns_mapping(body: ZnsMappingCheck, request: Request, admin: CurrentAdmin) -> JSONResponse:
    """Save the care step -> template mapping (and parameter names) after checking it with Zalo: it is used
    from then on instead of CAREDESK_ZNS__TEMPLATES; a template that is not approved or whose parameters
    CareDesk cannot fill is refused now (422, every problem named), not at the first send."""
    zns = _zns_of(request)
    wiring = request.app.state.wiring
    try:
        saved = await save_mapping(zns, mapping_store(wiring.engine, wiring.settings), body.templates,
                                   body.parameters)
    except MappingRefused as refused:  # "detail" too: the admin page shows it as any refusal's reasons
        return JSONResponse({"ok": False, "problems": refused.problems, "detail": refused.problems},
                            status_code=422)
    except ZnsError as error:
        raise ZnsUnavailable(f"could not ask Zalo, so the mapping was not saved: {error.reason}") from None
    return JSONResponse({"ok": True, "mapping": saved.templates, "parameters": saved.parameters})
