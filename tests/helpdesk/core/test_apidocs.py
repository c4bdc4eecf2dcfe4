"""The API docs work with no internet: every script, style and icon /docs and /redoc load comes from
this server, and the pages' security policy allows nothing else."""

from __future__ import annotations

import re

import pytest

from tests.helpdesk.core.test_security_headers import directives

ASSET = re.compile(r"""(?:src|href)=["']([^"']+)["']""")
CONTENT_TYPES = {".js": ("text/javascript", "application/javascript"), ".css": ("text/css",), ".png": ("image/png",)}


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
async def test_the_docs_load_their_assets_from_this_server_only(client, path):
    response = await client.get(path)
    assert response.status_code == 200
    assets = ASSET.findall(response.text)
    assert any(url.endswith(".js") for url in assets), assets
    for url in assets:
        assert url.startswith("/") and not url.startswith("//"), f"{path} loads {url} from elsewhere"
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rindex("."):]
        assert asset.headers["content-type"].split(";")[0] in CONTENT_TYPES[suffix], (url, asset.headers)
        assert len(asset.content) > 500, url  # the real file, not an empty stand-in


async def test_swagger_ui_is_the_real_bundle(client):
    bundle = await client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.content
    css = await client.get("/static/vendor/swagger-ui/swagger-ui.css")
    assert b".swagger-ui" in css.content


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_the_docs_policy_allows_no_other_origin(client, path):
    policy = directives((await client.get(path)).headers["content-security-policy"])
    for directive in ("default-src", "script-src", "style-src", "img-src", "font-src"):
        sources = [source for source in policy[directive] if not source.startswith("'sha256-")]
        assert set(sources) <= {"'self'", "'unsafe-inline'", "data:"}, (directive, sources)
    assert "'unsafe-inline'" not in policy["script-src"]


async def test_the_docs_show_their_sections_in_reading_order_not_the_matching_order(client):
    """Routes are matched webhooks first (the busiest path); the docs still open on health and agents,
    and every tag an operation carries has its place in the order."""
    from helpdesk.app import DOC_SECTIONS

    document = (await client.get("/openapi.json")).json()
    assert [tag["name"] for tag in document["tags"]] == list(DOC_SECTIONS)
    used = {tag for operations in document["paths"].values() for operation in operations.values()
            for tag in operation.get("tags", ())}
    assert used <= set(DOC_SECTIONS), used - set(DOC_SECTIONS)
    assert next(iter(document["paths"])) == "/healthz"
    assert list(document["paths"]).index("/webhooks/{channel}") < list(document["paths"]).index("/api/auth/token")
