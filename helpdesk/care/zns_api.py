"""The ZNS webhook: Zalo's reports on template messages (receipts, ratings) for the care they carried.

Zalo signs these events as it signs the OA's (``X-ZEvent-Signature``, see ``connectors/zalo_oa.py``),
so the Zalo OA channel verifies them. They change care rows only, idempotently (a receipt or a rating
recorded twice changes nothing), so they are recorded before the answer rather than queued.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from connectors.base import ConnectorError, WebhookRequest
from connectors.zalo_zns import parse_zns_event
from helpdesk.channels.deps import ConnectorsDep

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/zalo-zns/events", summary="Receive Zalo's ZNS events (receipts, ratings)")
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
