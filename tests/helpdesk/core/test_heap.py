"""A serving process freezes its start-up heap, so a full garbage collection does not walk it."""

from __future__ import annotations

import gc
import weakref

import httpx
import pytest

from helpdesk.app import create_app
from helpdesk.core.heap import freeze_startup_heap


def tracked(thing: object) -> bool:
    """Whether the collector's generations (what a collection walks) hold ``thing``."""
    return any(candidate is thing for candidate in gc.get_objects())


class Node:
    """Something that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def unfrozen():
    """The test process's heap as it was after: the suite starts many apps and must collect them.
    No automatic collection meanwhile: one could free a test's garbage before the test looks."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.unfreeze()
        if enabled:
            gc.enable()


@pytest.mark.parametrize("freeze_heap", [True, False])
async def test_the_app_started_to_serve_freezes_what_start_up_made(make_settings, unfrozen, freeze_heap):
    app = create_app(make_settings(), freeze_heap=freeze_heap)
    async with app.router.lifespan_context(app):
        wiring = app.state.wiring
        assert tracked(wiring) is not freeze_heap
        assert tracked(wiring.engine) is not freeze_heap
        assert (gc.get_freeze_count() > 0) is freeze_heap
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://caredesk.test") as client:
            assert (await client.get("/healthz")).status_code == 200
        # what comes after start-up is left to the collector
        assert tracked(Node())


def test_freezing_collects_start_up_garbage_first(unfrozen):
    garbage = weakref.ref(Node())  # in a cycle: only a collection frees it, and once frozen none would
    assert garbage() is not None
    frozen = freeze_startup_heap()
    assert garbage() is None
    assert frozen == gc.get_freeze_count() > 0
    later = weakref.ref(Node())
    assert tracked(later())
    gc.collect()
    assert later() is None
