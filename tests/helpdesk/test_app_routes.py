"""The application's routes are ready before it serves: no first request pays for building them."""

from __future__ import annotations

from fastapi.routing import APIRoute


def _included_routers(app) -> list[object]:
    """The routers app.include_router added, as FastAPI holds them (its own wrapper per inclusion)."""
    return [route for route in app.router.routes if hasattr(route, "original_router")]


async def test_included_routes_are_built_at_startup_not_on_the_first_request(client):
    """FastAPI analyses an included router's routes on the first request matched against it, on the
    event loop (a second and more on a busy machine: the loop-stall check failed browser tests with it);
    the lifespan does it in a thread before serving."""
    included = _included_routers(client.app)
    assert included, "no included router found: FastAPI's structure changed, revisit prepare_routes"
    for router in included:
        # the routes the request path matches against, already built (None: not yet)
        assert router._effective_candidates_version is not None, router.original_router
    built = [context.original_route for router in included for context in router.effective_route_contexts()]
    assert any(isinstance(route, APIRoute) and route.path == "/api/search" for route in built)
    # and still answering as before
    assert (await client.get("/healthz")).status_code == 200
