"""Admin routes for segments: save, list, read, change and delete definitions, and preview who they
match (a saved one, or a definition not saved yet). Routes are plain functions, so FastAPI runs them
and their queries in a worker thread, never on the event loop. Changes are audited."""

from __future__ import annotations

from fastapi import APIRouter, Response

from helpdesk.agents.deps import CurrentAdmin
from helpdesk.core.deps import ClockDep, SessionDep
from helpdesk.segments import service
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
def create_segment(body: SegmentCreate, admin: CurrentAdmin, session: SessionDep, clock: ClockDep) -> SegmentPublic:
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
def preview_segment(segment_id: int, _admin: CurrentAdmin, session: SessionDep, clock: ClockDep) -> SegmentPreview:
    """How many customers the saved segment matches now, and up to 20 of them (admins)."""
    segment = service.get_segment(session, segment_id)
    return service.preview(session, service.conditions_of(segment), clock.now())
