"""The FastAPI application."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from starlette.routing import NoMatchFound

from helpdesk.admin.api import admin_static_files
from helpdesk.admin.api import pages as admin_pages
from helpdesk.admin.api import router as admin_router
from helpdesk.agents.api import router as agents_router
from helpdesk.attachments.api import router as attachments_router
from helpdesk.channels.admin_api import router as pipeline_router
from helpdesk.channels.api import router as webhooks_router
from helpdesk.conversations.api import router as conversations_router
from helpdesk.canned.api import router as canned_router
from helpdesk.campaigns.api import router as campaigns_router
from helpdesk.care.api import router as order_care_router
from helpdesk.care.zns_api import router as zns_router
from helpdesk.care.mail_api import router as care_email_router
from helpdesk.care.reminders_api import router as care_reminders_router
from helpdesk.core.body_limits import BodyLimitMiddleware, RouteLimit
from helpdesk.core.config import Settings, get_settings
from helpdesk.customers.api import router as customers_router
from helpdesk.core.apidocs import add_docs_pages
from helpdesk.core.errors import CareDeskError, TooManyRequests
from helpdesk.core.heap import freeze_startup_heap
from helpdesk.core.headers import SecurityHeadersMiddleware
from helpdesk.inbox.api import inbox_static_files, router as inbox_router
from helpdesk.inbox.app_shell import router as inbox_app_router
from helpdesk.inbox.customer_page import router as customer_page_router
from helpdesk.jobs.admin_api import router as parked_jobs_router
from helpdesk.jobs.remote import RemoteJobs
from helpdesk.nlu_admin.api import router as nlu_router
from helpdesk.ops.health import readiness
from helpdesk.ops.metrics_api import router as metrics_router
from helpdesk.push.api import router as push_router
from helpdesk.reports.api import pages as reports_pages, router as reports_router
from helpdesk.reports.api import reports_static_files, vendor_static_files
from helpdesk.search.api import router as search_router
from helpdesk.segments.api import router as segments_router
from helpdesk.shop.api import router as orders_router
from helpdesk.sla.api import router as sla_router
from helpdesk.training.api import pages as training_pages, router as training_router
from helpdesk.webchat.api import router as webchat_router
from helpdesk.wiring import Wiring

log = logging.getLogger(__name__)


def prepare_routes(app: FastAPI) -> None:
    """Analyse every route's parameters and dependencies now, not on the first request that reaches it.

    FastAPI builds each included router's routes (signatures, dependency trees, pydantic fields) lazily,
    all of a router at once, on the first request that is matched against it: on the event loop, where
    it stalled the first requests of a busy process for a second or more. Looking up a route name that
    no route has walks every included router, which builds and caches them all.
    """
    try:
        app.url_path_for("caredesk: no route has this name")
    except NoMatchFound:
        pass


#: the tags of the API's operations, in the order the API docs show them (a tag not named here
#: comes after these, in the order of its routes)
DOC_SECTIONS = ("health", "agents", "conversations", "attachments", "customers", "canned responses", "orders",
                "care", "campaigns", "webhooks", "admin", "nlu", "webchat", "sla", "inbox", "web push", "search",
                "segments", "nlu training", "reports")


def create_app(settings: Settings | None = None, freeze_heap: bool = False) -> FastAPI:
    """Build the application; its wiring (``app.state.wiring``) starts and stops with it.
    ``freeze_heap``: once started, keep the start-up heap out of full garbage collections
    (``core.heap``; for the process that serves, not for a test suite that starts many apps)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # in a thread: this is the same sync work the first requests would otherwise do on the loop
        await anyio.to_thread.run_sync(prepare_routes, app)
        wiring = Wiring(settings)
        app.state.wiring = wiring
        await wiring.start()
        if freeze_heap:
            freeze_startup_heap()
        try:
            yield
        finally:
            await wiring.stop()

    app = FastAPI(
        title="CareDesk",
        version="0.1.0",
        description="Omnichannel chatbot and live-chat helpdesk for after-sales customer care.",
        lifespan=lifespan,
        # served by add_docs_pages: the pages with a security policy that fits them, the document
        # built off the event loop
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        # the API docs' sections in reading order: the routers are included in the order requests are
        # matched (webhooks first, below), which would otherwise be the docs' order too
        openapi_tags=[{"name": name} for name in DOC_SECTIONS],
    )
    # Every HTML page gets the inbox's security headers, whichever route (or error handler) sent it.
    app.add_middleware(SecurityHeadersMiddleware)
    add_docs_pages(app)

    @app.exception_handler(CareDeskError)
    async def domain_error(_request: Request, exc: CareDeskError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, TooManyRequests):
            headers = {"Retry-After": str(exc.retry_after)}
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(error.get("loc", ())), "msg": error.get("msg"), "type": error.get("type")}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz(request: Request) -> JSONResponse:
        """The database answers and has every migration, an NLU model is loaded, and Redis (when
        configured) answers; 503 naming what is not ready."""
        wiring: Wiring = request.app.state.wiring
        checks = await readiness(wiring)
        if isinstance(wiring.worker, RemoteJobs) and wiring.worker.spawn:
            checks["worker"] = wiring.worker.alive
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks,
                             "model_version": wiring.models.version}, status_code=200 if ready else 503)

    # Webhooks first: a request is matched against the routers in this order, and the platforms' posts
    # are the busiest path (each router tried before costs every webhook; ~10% of its time when last).
    # ZNS before the channels' /webhooks/{channel}, which would take /webhooks/zns
    app.include_router(zns_router)
    app.include_router(webhooks_router)
    app.include_router(metrics_router)
    app.include_router(agents_router)
    app.include_router(conversations_router)
    app.include_router(attachments_router)
    app.include_router(customers_router)
    app.include_router(canned_router)
    app.include_router(orders_router)
    app.include_router(order_care_router)
    app.include_router(care_email_router)
    app.include_router(care_reminders_router)
    app.include_router(campaigns_router)
    app.include_router(pipeline_router)
    app.include_router(parked_jobs_router)
    app.include_router(nlu_router)
    app.include_router(webchat_router)
    app.include_router(sla_router)
    app.include_router(inbox_router)
    app.include_router(inbox_app_router)
    app.include_router(customer_page_router)
    app.include_router(push_router)
    app.include_router(search_router)
    app.include_router(segments_router)
    app.mount("/inbox/static", inbox_static_files(), name="inbox-static")
    app.include_router(training_router)
    app.include_router(training_pages)
    app.include_router(reports_router)
    app.include_router(reports_pages)
    app.mount("/reports/static", reports_static_files(), name="reports-static")
    app.mount("/static/vendor", vendor_static_files(), name="vendor-static")
    app.include_router(admin_router)
    app.include_router(admin_pages)
    app.mount("/admin/static", admin_static_files(), name="admin-static")

    # -- request body limits: how much each route may receive, checked before any route reads it --
    limits = settings.limits
    app.add_middleware(
        BodyLimitMiddleware, default_bytes=limits.api_body_bytes, max_json_depth=limits.json_max_depth,
        routes=[RouteLimit("/webhooks/", limits.webhook_body_bytes, always_json=True),
                RouteLimit("/api/nlu/import", limits.import_body_bytes),
                RouteLimit("/api/orders/import", limits.import_body_bytes),
                # files: the storage cap, with room for the multipart form around the file
                RouteLimit("/api/conversations/{id}/messages", settings.storage.max_bytes + 64 * 1024),
                RouteLimit("/webchat/attachments", settings.storage.max_bytes + 64 * 1024)])

    # A value the schema let through but the database cannot hold (an id past 64 bits on SQLite, past
    # 32 on PostgreSQL, a string longer than its column): the request is at fault, not the server.
    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def value_out_of_range(_request: Request, exc: Exception) -> JSONResponse:
        log.info("refused a request with a value out of range: %s", str(exc).splitlines()[0][:200])
        # shaped like the validation errors above, which is what the schema documents for 422
        error = {"loc": ["request"], "msg": "a value in the request is out of range for what it names",
                 "type": "out_of_range"}
        return JSONResponse({"detail": [error]}, status_code=422)
    return app
