"""The API's OpenAPI document and its interactive docs (/docs, /redoc), with a security policy that
lets exactly them run.

FastAPI's pages load Swagger UI and ReDoc from a CDN and start them with an inline script; the policy
allows that CDN and those inline scripts by their hashes, so injected script still cannot run.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse

from helpdesk.core.headers import inline_script_hashes, page_policy, security_headers

CDN = "https://cdn.jsdelivr.net"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
OPENAPI_URL = "/openapi.json"


def _with_policy(request: Request, page: HTMLResponse) -> HTMLResponse:
    html = page.body.decode("utf-8")
    host = request.headers.get("host", "")
    policy = page_policy(
        host, script_src=f"'self' {CDN} {inline_script_hashes(html)}".strip(),
        style_src=f"'self' 'unsafe-inline' {CDN} https://fonts.googleapis.com", img_src="'self' data: https:",
        extra="font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:")
    return HTMLResponse(html, headers=security_headers(host, policy))


def add_docs_pages(app: FastAPI) -> None:
    """Serve /openapi.json, /docs, its OAuth2 redirect page and /redoc (create the app with
    docs_url=redoc_url=openapi_url=None)."""
    title = app.title

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi_document() -> JSONResponse:
        """The OpenAPI document. FastAPI's own route builds it on the event loop at the first request,
        walking every route's models while every other request of the process waits; here a thread
        builds it (once: the app keeps it)."""
        if app.openapi_schema is None:
            await to_thread.run_sync(app.openapi)
        return JSONResponse(app.openapi_schema)

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        """Swagger UI for the API."""
        return _with_policy(request, get_swagger_ui_html(openapi_url=OPENAPI_URL, title=f"{title} - Swagger UI",
                                                         oauth2_redirect_url=OAUTH2_REDIRECT_URL))

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        """Where Swagger UI's OAuth2 login comes back to."""
        return _with_policy(request, get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        """ReDoc for the API."""
        return _with_policy(request, get_redoc_html(openapi_url=OPENAPI_URL, title=f"{title} - ReDoc"))
