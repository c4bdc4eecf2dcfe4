"""``GET /api/search``: the inbox's one search box."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.exceptions import RequestValidationError

from helpdesk.agents.deps import CurrentAgent
from helpdesk.core.deps import SessionDep
from helpdesk.search import service
from helpdesk.search.schemas import SearchResults
from helpdesk.search.terms import MAX_QUERY_LENGTH, read_terms

router = APIRouter(prefix="/api/search", tags=["search"])


@router.get("", response_model=SearchResults)
def search(
    agent: CurrentAgent,
    session: SessionDep,
    q: str = Query(..., min_length=1, max_length=MAX_QUERY_LENGTH,
                   description="Words (accents optional), a phone number, a channel user id or an order code"),
    limit: int = Query(20, ge=1, le=50),
) -> SearchResults:
    """Customers and conversations the agent may see that the query finds (by customer name, phone,
    channel id, order code or message text, accents and case ignored), most relevant first."""
    terms = read_terms(q)
    if terms is None:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "q"), "input": q,
                                       "msg": "q has no letter or digit to search for"}])
    return service.search(session, agent, terms, limit=limit)
