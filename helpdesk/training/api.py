"""Routes of the training loop (``/api/nlu/...``, admins only except flagging) and its admin page."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse, StreamingResponse
from starlette.requests import HTTPConnection
from sqlmodel import Session

from helpdesk.core.db import utcnow
from helpdesk.agents.deps import CurrentAdmin, CurrentAgent
from helpdesk.core.deps import EngineDep, EventsDep, SessionDep, SettingsDep
from helpdesk.core.errors import BadRequest, CareDeskError, NotFound
from helpdesk.core.headers import security_headers
from helpdesk.training import annotations, dataset, faq, jobs, review, service
from helpdesk.training.jobs import TrainingLoop
from helpdesk.training.models import JobStatus, NluTrainingJob
from helpdesk.training.schemas import (
    ActivationPublic,
    ChangePublic,
    ChangesPublic,
    EntityNamesPublic,
    ExampleCreate,
    ExamplePublic,
    ExamplesPublic,
    ExampleUpdate,
    FaqAnswerPublic,
    FaqAnswersPublic,
    FaqAnswerUpdate,
    ImportPublic,
    IntentCreate,
    IntentPublic,
    IntentsPublic,
    JobPublic,
    JobsPublic,
    ModelPublic,
    ModelsPublic,
    ReviewDismissPublic,
    ReviewFlag,
    ReviewFlagPublic,
    ReviewGroupPublic,
    ReviewGroupsPublic,
    ReviewLabel,
    ReviewLabelPublic,
    ReviewMessagePublic,
    VocabularyPublic,
    VocabularyUpdate,
)
from helpdesk.training.service import Actor

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/nlu", tags=["nlu training"])
pages = APIRouter(include_in_schema=False)

HELPDESK_DIR = Path(__file__).resolve().parents[1]
PAGE_PATH = HELPDESK_DIR / "templates" / "training" / "admin.html"
ASSETS_DIR = HELPDESK_DIR / "static" / "training"
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
MAX_IMPORT_BYTES = 20_000_000


class PayloadTooLarge(CareDeskError):
    """The upload is bigger than an import may be."""

    status = 413


async def get_training(connection: HTTPConnection) -> TrainingLoop:
    """The process's training loop (started with the application's wiring)."""
    return connection.app.state.wiring.training


Training = Annotated[TrainingLoop, Depends(get_training)]


def seeded(engine: EngineDep, settings: SettingsDep) -> None:
    """Fill the training set from data/nlu on first use."""
    dataset.ensure_seeded(engine, settings.data_dir)


# Listed after the admin check in each route, so that refused callers never trigger seeding.
Seeded = Annotated[None, Depends(seeded)]


def _actor(agent) -> Actor:
    return Actor.agent(agent)


# ---------------------------------------------------------------------------------------------
# Intents and examples


@router.get("/intents", response_model=IntentsPublic)
def list_intents(admin: CurrentAdmin, _: Seeded, session: SessionDep, training: Training) -> IntentsPublic:
    """Every intent with its example counts and FAQ answers."""
    answers: dict[str, int] = {}
    for view in faq.list_answers(session, training.base_knowledge):
        if not view.hidden:
            answers[view.entry.intent] = answers.get(view.entry.intent, 0) + 1
    rows = [IntentPublic(name=i.name, examples=i.examples, holdout=i.holdout, from_review=i.from_review,
                         faq_answers=answers.get(i.name, 0)) for i in service.list_intents(session)]
    return IntentsPublic(data=rows, count=len(rows))


@router.post("/intents", response_model=IntentPublic, status_code=201)
def create_intent(body: IntentCreate, admin: CurrentAdmin, _: Seeded, session: SessionDep) -> IntentPublic:
    """Add an intent (empty until examples are added)."""
    intent = service.create_intent(session, _actor(admin), body.name)
    session.commit()
    return IntentPublic(name=intent.name, examples=0, holdout=0, from_review=0, faq_answers=0)


@router.delete("/intents/{name}", status_code=204)
def delete_intent(name: str, admin: CurrentAdmin, _: Seeded, session: SessionDep,
                  move_to: Annotated[str | None, Query(description="Move its examples to this intent")] = None
                  ) -> Response:
    """Delete an intent; its examples are deleted, or moved to ``move_to``."""
    service.delete_intent(session, _actor(admin), name, move_to)
    session.commit()
    return Response(status_code=204)


def _example_public(view: service.ExampleView) -> ExamplePublic:
    example = view.example
    return ExamplePublic(id=example.id, intent=view.intent, text=example.text, entities=example.entities,
                         holdout=example.holdout, source=example.source, created_at=example.created_at,
                         updated_at=example.updated_at)


@router.get("/examples", response_model=ExamplesPublic)
def search_examples(
    admin: CurrentAdmin, _: Seeded, session: SessionDep,
    q: Annotated[str, Query(max_length=200, description="Text to find (case and diacritics ignored)")] = "",
    intent: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ExamplesPublic:
    """Search the training examples."""
    views, count = service.search_examples(session, q, intent, limit, offset)
    return ExamplesPublic(data=[_example_public(view) for view in views], count=count)


@router.post("/examples", response_model=ExamplePublic, status_code=201)
def add_example(body: ExampleCreate, admin: CurrentAdmin, _: Seeded, session: SessionDep) -> ExamplePublic:
    """Add an example (a new intent name creates the intent)."""
    view = service.add_example(session, _actor(admin), body.intent, body.text,
                               [span.model_dump() for span in body.entities])
    session.commit()
    return _example_public(view)


@router.get("/examples/{example_id}", response_model=ExamplePublic)
def read_example(example_id: int, admin: CurrentAdmin, _: Seeded, session: SessionDep) -> ExamplePublic:
    """One example."""
    return _example_public(service.get_example(session, example_id))


@router.patch("/examples/{example_id}", response_model=ExamplePublic)
def edit_example(example_id: int, body: ExampleUpdate, admin: CurrentAdmin, _: Seeded,
                 session: SessionDep) -> ExamplePublic:
    """Edit an example's text or entities, or move it to another intent."""
    entities = None if body.entities is None else [span.model_dump() for span in body.entities]
    view = service.update_example(session, _actor(admin), example_id, text=body.text, intent=body.intent,
                                  entities=entities)
    session.commit()
    return _example_public(view)


@router.delete("/examples/{example_id}", status_code=204)
def delete_example(example_id: int, admin: CurrentAdmin, _: Seeded, session: SessionDep) -> Response:
    """Delete an example."""
    service.delete_example(session, _actor(admin), example_id)
    session.commit()
    return Response(status_code=204)


@router.get("/entities", response_model=EntityNamesPublic)
def list_entity_names(admin: CurrentAdmin, _: Seeded, session: SessionDep) -> EntityNamesPublic:
    """Entity names the training set uses (annotated in examples, or a regex or lookup table's name)."""
    names = annotations.entity_names(session)
    return EntityNamesPublic(data=names, count=len(names))


@router.get("/vocabulary", response_model=list[VocabularyPublic])
def list_vocabulary(admin: CurrentAdmin, _: Seeded, session: SessionDep) -> list[VocabularyPublic]:
    """Synonyms, regexes and lookup tables."""
    return [VocabularyPublic(kind=row.kind, name=row.name, entries=row.entries)
            for row in service.list_vocabulary(session)]


@router.put("/vocabulary/{kind}/{name}", response_model=VocabularyPublic)
def save_vocabulary(kind: Literal["synonym", "regex", "lookup"], name: str, body: VocabularyUpdate,
                    admin: CurrentAdmin, _: Seeded, session: SessionDep) -> VocabularyPublic:
    """Create or replace a synonym (name = canonical value), regex or lookup table."""
    row = service.save_vocabulary(session, _actor(admin), kind, name, body.entries)
    session.commit()
    return VocabularyPublic(kind=row.kind, name=row.name, entries=row.entries)


@router.delete("/vocabulary/{kind}/{name}", status_code=204)
def delete_vocabulary(kind: Literal["synonym", "regex", "lookup"], name: str, admin: CurrentAdmin, _: Seeded,
                      session: SessionDep) -> Response:
    """Delete a synonym, regex or lookup table."""
    service.delete_vocabulary(session, _actor(admin), kind, name)
    session.commit()
    return Response(status_code=204)


@router.get("/changes", response_model=ChangesPublic)
def list_changes(admin: CurrentAdmin, _: Seeded, session: SessionDep,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 offset: Annotated[int, Query(ge=0)] = 0) -> ChangesPublic:
    """Who changed what in the training set and the FAQ answers, newest first."""
    rows, count = service.list_changes(session, limit, offset)
    return ChangesPublic(data=[ChangePublic.model_validate(row, from_attributes=True) for row in rows], count=count)


# ---------------------------------------------------------------------------------------------
# Export and import


@router.get("/export", response_class=PlainTextResponse,
            responses={200: {"content": {"application/x-yaml": {}}, "description": "Rasa 3 NLU YAML"}})
def export(admin: CurrentAdmin, _: Seeded, session: SessionDep,
           download: Annotated[bool, Query(description="Answer as a file to save")] = False) -> Response:
    """The whole training set as one Rasa 3 YAML file (``rasa train nlu`` reads it)."""
    headers = {"Content-Disposition": 'attachment; filename="caredesk-nlu.yml"'} if download else None
    return Response(dataset.export_yaml(session), media_type="application/x-yaml; charset=utf-8", headers=headers)


@router.post("/import", response_model=ImportPublic,
             openapi_extra={"requestBody": {"content": {"application/x-yaml": {"schema": {"type": "string"}}},
                                            "required": True}})
async def import_(request: Request, admin: CurrentAdmin, _: Seeded, engine: EngineDep,
                  mode: Annotated[Literal["replace", "merge"], Query()] = "merge") -> ImportPublic:
    """Load Rasa YAML: ``replace`` makes the set exactly the file, ``merge`` adds what is new (texts
    already examples of another intent are skipped and listed). The file is the request body, or
    the one file of a multipart form (an HTML upload), or ``{"yaml": "..."}`` as JSON."""
    text = await _uploaded_text(request)

    def run() -> dataset.ImportSummary:
        with Session(engine, expire_on_commit=False) as session:
            summary = dataset.import_yaml(session, _actor(admin), text, mode)
            session.commit()
            return summary

    summary = await to_thread.run_sync(run)
    return ImportPublic(**summary.__dict__)


async def _uploaded_text(request: Request) -> str:
    """The YAML text of an import request, however it was sent."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_IMPORT_BYTES + 64_000:
        raise PayloadTooLarge(f"an import may be at most {MAX_IMPORT_BYTES // 1_000_000} MB")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=10, max_part_size=MAX_IMPORT_BYTES)
        uploads = [value for value in form.values() if not isinstance(value, str)]
        if not uploads:
            raise BadRequest("the form has no file: send the Rasa YAML file as its one file field")
        body = await uploads[0].read(MAX_IMPORT_BYTES + 1)
    else:
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_IMPORT_BYTES:
                break
    if len(body) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"an import may be at most {MAX_IMPORT_BYTES // 1_000_000} MB")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the file is not UTF-8 text") from None
    if content_type == "application/json":
        try:
            document = json.loads(text)
        except ValueError:
            raise BadRequest("the JSON body is not valid JSON") from None
        if not isinstance(document, dict) or not isinstance(document.get("yaml"), str):
            raise BadRequest('a JSON import is {"yaml": "<the Rasa YAML file>"}')
        text = document["yaml"]
    return text


# ---------------------------------------------------------------------------------------------
# FAQ answers


def _faq_public(view: faq.FaqView) -> FaqAnswerPublic:
    entry = view.entry
    return FaqAnswerPublic(id=entry.id, intent=entry.intent, answer=dict(entry.answer), keywords=list(entry.keywords),
                           links=[{"title": link.title, "url": link.url} for link in entry.links],
                           origin=view.origin, hidden=view.hidden)


@router.get("/faq", response_model=FaqAnswersPublic)
def list_faq(admin: CurrentAdmin, session: SessionDep, training: Training,
             intent: Annotated[str | None, Query(max_length=100)] = None) -> FaqAnswersPublic:
    """FAQ answers attached to intents: from data/faq, edited here, or added here."""
    views = faq.list_answers(session, training.base_knowledge, intent)
    return FaqAnswersPublic(data=[_faq_public(view) for view in views], count=len(views))


async def _faq_write(training: TrainingLoop, work) -> Any:
    def run():
        with Session(training.engine, expire_on_commit=False) as session:
            result = work(session)
            session.commit()
            return result

    result = await to_thread.run_sync(run)
    await training.faq_changed()  # committed: the bot answers with it from now on, in every process
    return result


@router.put("/faq/{faq_id}", response_model=FaqAnswerPublic)
async def save_faq(faq_id: str, body: FaqAnswerUpdate, admin: CurrentAdmin, training: Training) -> FaqAnswerPublic:
    """Write an FAQ answer: edits a data/faq answer with this id, or adds a new one."""
    view = await _faq_write(training, lambda session: faq.save_answer(
        session, _actor(admin), training.base_knowledge, faq_id, intent=body.intent, answer=body.answer,
        keywords=body.keywords, links=[link.model_dump() for link in body.links]))
    return _faq_public(view)


@router.delete("/faq/{faq_id}", status_code=204)
async def hide_faq(faq_id: str, admin: CurrentAdmin, training: Training) -> Response:
    """Stop the bot using an answer (an added one is deleted, a data/faq one hidden)."""
    await _faq_write(training, lambda session: faq.hide_answer(session, _actor(admin), training.base_knowledge,
                                                               faq_id))
    return Response(status_code=204)


@router.post("/faq/{faq_id}/revert", status_code=204)
async def revert_faq(faq_id: str, admin: CurrentAdmin, training: Training) -> Response:
    """Go back to the data/faq file's version of an answer."""
    await _faq_write(training, lambda session: faq.revert_answer(session, _actor(admin), training.base_knowledge,
                                                                 faq_id))
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------
# Review queue


def _review_message(item) -> ReviewMessagePublic:
    return ReviewMessagePublic(
        id=item.message_id, message_id=item.message_id, conversation_id=item.conversation_id, channel=item.channel,
        text=item.text, reasons=[r for r in item.reasons.split(",") if r], predicted_intent=item.predicted_intent,
        confidence=item.confidence, model_version=item.model_version, escalation_reason=item.escalation_reason,
        status=item.status, label=item.label, message_at=item.message_at)


@router.get("/review", response_model=ReviewGroupsPublic)
def review_queue(
    admin: CurrentAdmin, _: Seeded, engine: EngineDep, session: SessionDep,
    channel: Annotated[str | None, Query(max_length=32)] = None,
    reason: Annotated[Literal["low_confidence", "fallback", "handoff", "flagged"] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="Messages from this time (ISO 8601)")] = None,
    until: Annotated[datetime | None, Query(description="Messages before this time (ISO 8601)")] = None,
    days: Annotated[int | None, Query(ge=1, le=3650, description="Messages of the last N days")] = None,
    status: Annotated[Literal["open", "labelled", "dismissed"], Query()] = "open",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> ReviewGroupsPublic:
    """Messages the bot may have misunderstood, grouped (near-identical texts together), newest first."""
    review.collect(engine)
    if days is not None:
        since = max(since, utcnow() - timedelta(days=days)) if since else utcnow() - timedelta(days=days)
    for moment in (since, until):
        if moment is not None and moment.tzinfo is None:
            raise BadRequest("since and until need a time zone (e.g. 2025-01-31T00:00:00+07:00)")
    flt = review.ReviewFilter(status=status, channel=channel, reason=reason, since=since, until=until)
    groups, count = review.list_groups(session, flt, limit, offset)
    return ReviewGroupsPublic(count=count, data=[
        ReviewGroupPublic(id=g.id, count=g.count, newest_at=g.newest_at, oldest_at=g.oldest_at, texts=g.texts,
                          reasons=g.reasons, channels=g.channels, predicted=g.predicted,
                          messages=[_review_message(item) for item in g.items])
        for g in groups])


@router.post("/review/flag", response_model=ReviewFlagPublic, status_code=201)
def flag_message(body: ReviewFlag, agent: CurrentAgent, session: SessionDep) -> ReviewFlagPublic:
    """Any agent: "the bot misunderstood this" on a customer message; it goes to the review queue."""
    item = review.flag_message(session, agent, body.message_id, body.note)
    session.commit()
    return ReviewFlagPublic(message_id=item.message_id, group_id=review.group_id(item.group_key), status=item.status,
                            reasons=[r for r in item.reasons.split(",") if r])


@router.post("/review/{target}/label", response_model=ReviewLabelPublic)
def label_review(target: str, body: ReviewLabel, admin: CurrentAdmin, _: Seeded,
                 session: SessionDep) -> ReviewLabelPublic:
    """Label a group (``g…`` id from the queue: all its open messages) or one message (its numeric
    message id): each distinct text becomes one example of the intent (created if new)."""
    outcome = review.label(session, _actor(admin), target, body.intent,
                           [mark.model_dump() for mark in body.entities], body.text)
    session.commit()
    return ReviewLabelPublic(**outcome.__dict__)


@router.post("/review/{target}/dismiss", response_model=ReviewDismissPublic)
def dismiss_review(target: str, admin: CurrentAdmin, session: SessionDep) -> ReviewDismissPublic:
    """Take a group (``g…``) or one message (numeric id) out of the queue without labelling."""
    count = review.dismiss(session, _actor(admin), target)
    session.commit()
    return ReviewDismissPublic(dismissed=count)


# ---------------------------------------------------------------------------------------------
# Training jobs and models


def _job_public(job: NluTrainingJob, training: TrainingLoop | None = None) -> JobPublic:
    public = JobPublic.model_validate(job, from_attributes=True)
    live = training.live_progress(job.id) if training is not None else None
    if live is not None and job.status == JobStatus.running:
        public.stage, public.progress = live[0], max(live[1], job.progress)
    return public


@router.post("/train", response_model=JobPublic, status_code=202)
async def train(admin: CurrentAdmin, training: Training) -> JobPublic:
    """Retrain on the training set (minus the held-out split) in the background; follow the job."""
    job = await training.start_job(_actor(admin))
    return _job_public(job, training)


@router.get("/jobs", response_model=JobsPublic)
def list_jobs(admin: CurrentAdmin, session: SessionDep, training: Training,
              limit: Annotated[int, Query(ge=1, le=100)] = 20) -> JobsPublic:
    """Recent retrains, newest first."""
    rows = jobs.list_jobs(session, limit)
    return JobsPublic(data=[_job_public(job, training) for job in rows], count=len(rows))


@router.get("/jobs/{job_id}", response_model=JobPublic)
def read_job(job_id: int, admin: CurrentAdmin, session: SessionDep, training: Training) -> JobPublic:
    """A retrain's progress (0..1, stage), and its comparison once done."""
    return _job_public(jobs.get_job(session, job_id), training)


@router.get("/jobs/{job_id}/events")
async def job_events(job_id: int, request: Request, admin: CurrentAdmin, events: EventsDep, engine: EngineDep,
                     training: Training) -> StreamingResponse:
    """Server-sent events: the job now, then each ``nlu_training_progress`` until it ends."""
    queue = events.subscribe()  # before reading the job, so nothing falls in between

    def read() -> JobPublic:
        with Session(engine) as session:
            return _job_public(jobs.get_job(session, job_id), training)

    try:
        current = await to_thread.run_sync(read)
    except NotFound:
        events.unsubscribe(queue)
        raise

    async def stream():
        try:
            yield f"event: job\ndata: {current.model_dump_json()}\n\n"
            if current.status not in (JobStatus.queued, JobStatus.running):
                return
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=10)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": still running\n\n"
                    continue
                if event.name != "nlu_training_progress" or event.data.get("job_id") != job_id:
                    continue
                yield f"event: progress\ndata: {json.dumps(event.data, default=str)}\n\n"
                if event.data.get("status") != JobStatus.running:
                    final = await to_thread.run_sync(read)
                    yield f"event: job\ndata: {final.model_dump_json()}\n\n"
                    return
        finally:
            events.unsubscribe(queue)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/models", response_model=ModelsPublic)
async def list_models(admin: CurrentAdmin, engine: EngineDep, training: Training) -> ModelsPublic:
    """Stored model versions with their metrics, newest first; which one answers now."""
    training.warm_up()  # the training page reads this first: the retrain button will not wait for a process
    views = await to_thread.run_sync(jobs.list_models, engine, training.store)
    data = [ModelPublic(**view.__dict__) for view in views]
    return ModelsPublic(data=data, count=len(data), active=next((m.version for m in data if m.active), None))


@router.post("/models/{version}/activate", response_model=ActivationPublic)
async def activate_model(version: str, admin: CurrentAdmin, training: Training) -> ActivationPublic:
    """Answer with this version from now on, in every process (also how to roll back)."""
    version, previous = await training.activate(_actor(admin), version)
    return ActivationPublic(version=version, previous=previous)


@router.post("/models/{version}/discard", status_code=204)
async def discard_model(version: str, admin: CurrentAdmin, training: Training) -> Response:
    """Delete a version that is not active (a candidate the admin does not want)."""
    await training.discard(_actor(admin), version)
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------
# The admin page


@lru_cache(maxsize=16)
def _asset(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


@pages.get("/admin/nlu")
def admin_page(request: Request) -> HTMLResponse:
    """The training page: review, label, retrain, compare, activate, roll back (data comes from the API)."""
    body, _ = _asset(PAGE_PATH, PAGE_PATH.stat().st_mtime_ns)
    # Nothing but this server: no CDN, no inline script, no framing.
    return HTMLResponse(body.decode("utf-8"), headers=security_headers(request.headers.get("host", "")))


@pages.get("/admin/nlu/assets/{name}")
def admin_asset(name: str, request: Request) -> Response:
    """The page's script and style sheet."""
    path = ASSETS_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in ASSET_TYPES or not path.is_file():
        raise NotFound(f"no asset {name!r}")
    body, etag = _asset(path, path.stat().st_mtime_ns)
    headers = {"Cache-Control": "no-cache", "ETag": etag, "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=ASSET_TYPES[path.suffix], headers=headers)
