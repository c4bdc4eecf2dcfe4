"""The links in care mails: a star link records the order's rating and shows a small confirmation page,
the unsubscribe link shows a page with a button, and its POST (also the one-click POST mail providers make
for ``List-Unsubscribe-Post``, RFC 8058) opts the customer out of all care on every channel.

A second click on a star link records the newer number of stars (the same number again changes nothing).
The pages show Vietnamese first and English second, since the customer may not be known to CareDesk."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jinja2
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from helpdesk.care.mail import LinkInvalid
from helpdesk.core.headers import security_headers

HELPDESK_DIR = Path(__file__).resolve().parent.parent
STRINGS_DIR = HELPDESK_DIR / "static" / "care" / "i18n"

router = APIRouter(prefix="/care/email", tags=["care"])

_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(HELPDESK_DIR / "templates"), autoescape=True,
                                undefined=jinja2.StrictUndefined)


@cache
def _strings(language: str) -> dict[str, str]:
    return json.loads((STRINGS_DIR / f"{language}.json").read_text(encoding="utf-8"))


def _page(request: Request, title_key: str, body_key: str, status_code: int = 200, *, stars: int = 0,
          order: str = "", form_action: str | None = None, why_action: str | None = None) -> HTMLResponse:
    html = _templates.get_template("care/email_link.html").render(
        shop=request.app.state.wiring.settings.shop.name, vi=_strings("vi"), en=_strings("en"),
        title_key=title_key, body_key=body_key, stars=stars, order=order, form_action=form_action,
        why_action=why_action)
    return HTMLResponse(html, status_code=status_code, headers=security_headers(request.headers.get("host", "")))


def _email_care(request: Request):
    return request.app.state.wiring.care.email


@router.get("/rate/{token}", response_class=HTMLResponse, summary="Record a star link's rating")
async def rate_by_link(request: Request, token: str, stars: str = "") -> HTMLResponse:
    """Record ``stars`` (1-5) as the rating of the order the link's care mail was about."""
    email = _email_care(request)
    if email is None:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 404)
    if not (stars.isdigit() and 1 <= int(stars) <= 5):
        return _page(request, "email_link_invalid_title", "email_stars_invalid", 400)
    try:
        kind, code = await email.rate(token, int(stars))
    except LinkInvalid:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 400)
    if kind == "ignored":
        return _page(request, "email_link_invalid_title", "email_rate_ignored", 409)
    return _page(request, "email_rated_title", "email_rated_body", stars=int(stars), order=code)


@router.get("/nps/{token}", response_class=HTMLResponse, summary="Record an NPS link's answer")
async def nps_by_link(request: Request, token: str, score: str = "") -> HTMLResponse:
    """Record ``score`` (0-10) as the answer to the NPS survey the link's care mail asked, and offer a
    form for why (optional)."""
    email = _email_care(request)
    if email is None:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 404)
    if not (score.isdigit() and 0 <= int(score) <= 10):
        return _page(request, "email_link_invalid_title", "email_nps_score_invalid", 400)
    try:
        answer = await email.answer_nps(token, int(score))
    except LinkInvalid:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 400)
    return _page(request, "email_nps_title", "email_nps_body", stars=int(score), order=answer.order_code,
                 why_action=f"/care/email/nps/{token}")


@router.post("/nps/{token}", response_class=HTMLResponse, summary="Store why, after an NPS link's answer")
async def nps_why(request: Request, token: str, comment: str = Form("")) -> HTMLResponse:
    """Store the customer's reason with the answer the same link recorded."""
    email = _email_care(request)
    if email is None:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 404)
    if not comment.strip():
        return _page(request, "email_link_invalid_title", "email_nps_why_empty", 400,
                     why_action=f"/care/email/nps/{token}")
    try:
        answer = await email.nps_comment(token, comment)
    except LinkInvalid:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 400)
    return _page(request, "email_nps_thanks_title", "email_nps_thanks_body", order=answer.order_code)


@router.get("/unsubscribe/{token}", response_class=HTMLResponse, summary="Ask to confirm unsubscribing")
async def unsubscribe_page(request: Request, token: str) -> HTMLResponse:
    """A page with the button that unsubscribes (a GET changes nothing: mail scanners open links)."""
    return _page(request, "email_unsubscribe_title", "email_unsubscribe_body",
                 form_action=f"/care/email/unsubscribe/{token}")


@router.post("/unsubscribe/{token}", response_class=HTMLResponse, summary="Unsubscribe from all care")
async def unsubscribe(request: Request, token: str) -> HTMLResponse:
    """Opt the customer out of every care message on every channel (RFC 8058 one-click, or the button)."""
    email = _email_care(request)
    if email is None:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 404)
    try:
        await email.unsubscribe(token)
    except LinkInvalid:
        return _page(request, "email_link_invalid_title", "email_link_invalid_body", 400)
    return _page(request, "email_unsubscribed_title", "email_unsubscribed_body")
