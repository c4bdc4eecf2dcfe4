"""The small HTTP server of a ``caredesk worker`` (``CAREDESK_WORKER__HTTP_PORT``): ``/healthz``,
``/readyz`` and ``/metrics``, so a container healthcheck and Prometheus see each worker replica as
they see the app's. It serves nothing else: webhooks and the API stay on ``caredesk serve``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from helpdesk.core.errors import CareDeskError
from helpdesk.ops.health import readiness
from helpdesk.ops.metrics_api import router as metrics_router

log = logging.getLogger(__name__)


def worker_http_app(wiring: Any) -> FastAPI:
    """The worker's HTTP application, on the worker's wiring (already started)."""
    app = FastAPI(title="CareDesk worker", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.wiring = wiring

    @app.exception_handler(CareDeskError)
    async def domain_error(_request: Request, exc: CareDeskError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)

    @app.get("/healthz")
    async def healthz() -> dict:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        """Ready to run jobs; 503 naming what is not ready."""
        checks = await readiness(wiring)
        ready = all(checks.values())
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks,
                             "model_version": wiring.models.version}, status_code=200 if ready else 503)

    app.include_router(metrics_router)
    return app


class WorkerHTTP:
    """The worker's HTTP server, run on the worker's event loop."""

    def __init__(self, wiring: Any, host: str, port: int):
        import uvicorn

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield  # the worker's own signal handlers stop it (and this server with it)

        self.server = Server(uvicorn.Config(worker_http_app(wiring), host=host, port=port, log_config=None,
                                            access_log=False, lifespan="off"))
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        """Listen; returns once the port is open (raises if it cannot be)."""
        host, port = self.server.config.host, self.server.config.port
        # bound here rather than by uvicorn, which would exit the whole process on a port in use
        try:
            listener = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:
            raise RuntimeError(f"the worker's HTTP server cannot listen on {host}:{port} "
                               f"(CAREDESK_WORKER__HTTP_PORT): {exc}") from exc
        self._task = asyncio.create_task(self.server.serve(sockets=[listener]), name="caredesk-worker-http")
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the worker's HTTP server stopped while starting")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        """Close the port and let requests in progress finish."""
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception, SystemExit):
            await asyncio.wait_for(self._task, 10)
