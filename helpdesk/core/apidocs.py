"""The API's OpenAPI document and its interactive docs (/docs, /redoc), with a security policy that
lets exactly them run.

Swagger UI (swagger-ui-dist 5.35.0) and ReDoc (redoc 2.5.4) come with CareDesk, under
``helpdesk/static/vendor/`` with their licences, served at ``/static/vendor/`` (mounted by
``helpdesk.app``): the docs work on a machine with no internet, and the policy allows scripts from
this server only, plus the one inline script that starts Swagger UI, by its hash.
"""

from __future__ import annotations

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, JSONResponse

from helpdesk.core.headers import inline_script_hashes, page_policy, security_headers

VENDOR_URL = "/static/vendor"
SWAGGER_JS_URL = f"{VENDOR_URL}/swagger-ui/swagger-ui-bundle.js"
SWAGGER_CSS_URL = f"{VENDOR_URL}/swagger-ui/swagger-ui.css"
FAVICON_URL = f"{VENDOR_URL}/swagger-ui/favicon-32x32.png"
REDOC_JS_URL = f"{VENDOR_URL}/redoc/redoc.standalone.js"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
OPENAPI_URL = "/openapi.json"


def _with_policy(request: Request, page: HTMLResponse) -> HTMLResponse:
    html = page.body.decode("utf-8")
    host = request.headers.get("host", "")
    # style-src 'unsafe-inline': Swagger UI and ReDoc set style attributes and (ReDoc) style elements
    # as they render; worker-src blob: ReDoc searches in a worker it builds from a blob
    policy = page_policy(
        host, script_src=f"'self' {inline_script_hashes(html)}".strip(), style_src="'self' 'unsafe-inline'",
        img_src="'self' data:", extra="font-src 'self'; worker-src 'self' blob:")
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
        return _with_policy(request, get_swagger_ui_html(
            openapi_url=OPENAPI_URL, title=f"{title} - Swagger UI", oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=SWAGGER_JS_URL, swagger_css_url=SWAGGER_CSS_URL, swagger_favicon_url=FAVICON_URL))

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect(request: Request) -> HTMLResponse:
        """Where Swagger UI's OAuth2 login comes back to."""
        return _with_policy(request, get_swagger_ui_oauth2_redirect_html())

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        """ReDoc for the API."""
        return _with_policy(request, get_redoc_html(
            openapi_url=OPENAPI_URL, title=f"{title} - ReDoc", redoc_js_url=REDOC_JS_URL,
            redoc_favicon_url=FAVICON_URL, with_google_fonts=False))
