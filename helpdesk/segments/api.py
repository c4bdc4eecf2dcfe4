"""Admin routes for segments: save, list, read, change and delete definitions, and preview who they
match (a saved one, or a definition not saved yet). Routes are plain functions, so FastAPI runs them
and their queries in a worker thread, never on the event loop. Changes are audited."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse

from helpdesk.agents.deps import CurrentAdmin
from helpdesk.core.deps import ClockDep, EngineDep, SessionDep
from helpdesk.segments import export, service
from helpdesk.segments.schemas import (
    SegmentCreate,
    SegmentPreview,
    SegmentPreviewRequest,
    SegmentPublic,
    SegmentsPublic,
    SegmentUpdate,
)

router = APIRouter(prefix="/api/segments", tags=["segments"])


@router.get("", response_model=SegmentsPublic)
def list_segments(_admin: CurrentAdmin, session: SessionDep) -> SegmentsPublic:
    """Every saved segment, by name (admins)."""
    rows = service.list_segments(session)
    return SegmentsPublic(data=[SegmentPublic.model_validate(s) for s in rows], count=len(rows))


@router.post("", response_model=SegmentPublic, status_code=201)
def create_segment(body: SegmentCreate, admin: CurrentAdmin, session: SessionDep,
                   clock: ClockDep) -> SegmentPublic:
    """Save a segment (admins); 409 for a name in use, 422 naming the condition that cannot be used."""
    segment = service.create_segment(session, name=body.name, description=body.description,
                                     conditions=body.definition, actor_id=admin.id, now=clock.now())
    return SegmentPublic.model_validate(segment)


@router.post("/preview", response_model=SegmentPreview)
def preview_definition(body: SegmentPreviewRequest, _admin: CurrentAdmin, session: SessionDep,
                       clock: ClockDep) -> SegmentPreview:
    """How many customers a definition not saved yet matches now, and up to 20 of them (admins)."""
    return service.preview(session, body.definition, clock.now())


@router.get("/{segment_id}", response_model=SegmentPublic)
def read_segment(segment_id: int, _admin: CurrentAdmin, session: SessionDep) -> SegmentPublic:
    """A saved segment (admins)."""
    return SegmentPublic.model_validate(service.get_segment(session, segment_id))


@router.put("/{segment_id}", response_model=SegmentPublic)
def update_segment(segment_id: int, body: SegmentUpdate, admin: CurrentAdmin, session: SessionDep,
                   clock: ClockDep) -> SegmentPublic:
    """Change a segment's name, description or definition (admins); fields left out stay as they are."""
    segment = service.get_segment(session, segment_id)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    segment = service.update_segment(session, segment, changes, actor_id=admin.id, now=clock.now())
    return SegmentPublic.model_validate(segment)


@router.delete("/{segment_id}", status_code=204)
def delete_segment(segment_id: int, admin: CurrentAdmin, session: SessionDep) -> Response:
    """Delete a segment (admins)."""
    service.delete_segment(session, service.get_segment(session, segment_id), actor_id=admin.id)
    return Response(status_code=204)


@router.get("/{segment_id}/preview", response_model=SegmentPreview)
def preview_segment(segment_id: int, _admin: CurrentAdmin, session: SessionDep,
                    clock: ClockDep) -> SegmentPreview:
    """How many customers the saved segment matches now, and up to 20 of them (admins)."""
    segment = service.get_segment(session, segment_id)
    return service.preview(session, service.conditions_of(segment), clock.now())


@router.get("/{segment_id}/customers.csv", response_class=StreamingResponse,
            summary="Every customer the segment matches now, as CSV",
            responses={200: {"description": "UTF-8 CSV with a header row, one row per customer "
                                            "(formula-like cells quoted)",
                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_segment_customers(
    segment_id: int, _admin: CurrentAdmin, session: SessionDep, engine: EngineDep, clock: ClockDep,
    excel: Annotated[bool, Query(description="Start with a byte order mark for Excel")] = False,
) -> StreamingResponse:
    """Every member (admins), for contacting them outside CareDesk: id, name, full phone, email,
    channels, purchases, last purchase and whether they opted out of care messages."""
    ids = service.segment_customer_ids(session, segment_id, now=clock.now())
    return StreamingResponse(
        export.csv_chunks(engine, ids, excel=excel), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="caredesk-segment-{segment_id}.csv"',
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})
