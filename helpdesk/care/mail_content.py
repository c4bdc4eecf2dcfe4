"""What a care email says and looks like: the care step's text (the same templates chats get, from
data/bot/care.yml), a subject, five one-click star links for the rating request, the shop's name and logo,
and the unsubscribe link; as plain text and as HTML."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from bot.responses import Responses
from helpdesk.care.models import CareKind
from helpdesk.care.reminders import template_step

#: the colour of the star links and the header rule (the inbox's accent)
ACCENT = "#d9480f"


@dataclass(frozen=True)
class CareEmailContent:
    """One care email's words and links, before it becomes MIME."""

    subject: str
    body: str
    #: stars -> the signed link recording that rating (rating request only)
    star_links: dict[int, str]
    unsubscribe_url: str
    shop_name: str
    logo_url: str
    locale: str
    #: score -> the signed link recording that NPS answer (NPS survey only)
    nps_links: dict[int, str] = field(default_factory=dict)


def care_email_content(
    responses: Responses, *, kind: str, locale: str, body: str, shop: str, order_code: str, product: str,
    star_links: dict[int, str], unsubscribe_url: str, logo_url: str, nps_links: dict[int, str] | None = None,
) -> CareEmailContent:
    """The subject of the step in the customer's language around the step's ``body``; a reminder takes its
    type's subject (every maintenance reminder alike)."""
    step = template_step(kind)
    known = (*CareKind, "maintenance", "warranty_expiry")
    subject_key = f"care_email_subject_{step}" if step in known else "care_email_subject_thank_you"
    subject = responses.render(subject_key, locale, shop=shop, order=order_code, product=product)
    return CareEmailContent(subject=subject, body=body, star_links=star_links, unsubscribe_url=unsubscribe_url,
                            shop_name=shop, logo_url=logo_url, locale=locale, nps_links=dict(nps_links or {}))


def plain_text(content: CareEmailContent, responses: Responses) -> str:
    """The text/plain part."""
    locale = content.locale
    lines = [content.body, ""]
    if content.star_links:
        lines.append(responses.render("care_email_rate_prompt", locale))
        for stars, url in sorted(content.star_links.items()):
            lines.append(f"  {'★' * stars}{'☆' * (5 - stars)}  {url}")
        lines.append("")
    if content.nps_links:
        lines.append(responses.render("care_email_nps_prompt", locale))
        for score, url in sorted(content.nps_links.items()):
            lines.append(f"  {score:>2}  {url}")
        lines.append("")
    lines += [responses.render("care_email_reply_hint", locale), "", "-- ", content.shop_name,
              f"{responses.render('care_email_unsubscribe', locale)} {content.unsubscribe_url}"]
    return "\n".join(lines) + "\n"


def html_text(content: CareEmailContent, responses: Responses) -> str:
    """The text/html part: inline styles only (mail clients drop style sheets), every value escaped."""
    locale = content.locale
    header = (f'<img src="{escape(content.logo_url)}" alt="{escape(content.shop_name)}" height="48" '
              f'style="display:block;border:0;max-height:48px">' if content.logo_url
              else f'<strong style="font-size:20px">{escape(content.shop_name)}</strong>')
    paragraphs = "".join(f'<p style="margin:0 0 12px">{escape(line)}</p>'
                         for line in content.body.split("\n") if line.strip())
    stars = ""
    if content.star_links:
        links = "".join(
            f'<a href="{escape(url)}" title="{escape(responses.render("care_email_star", locale, stars=n))}" '
            f'style="display:inline-block;margin:0 4px 4px 0;padding:8px 10px;border:1px solid {ACCENT};'
            f'border-radius:6px;color:{ACCENT};text-decoration:none;font-size:18px">'
            f'{"★" * n}<span style="color:#999">{"☆" * (5 - n)}</span></a>'
            for n, url in sorted(content.star_links.items()))
        stars = (f'<p style="margin:16px 0 8px">{escape(responses.render("care_email_rate_prompt", locale))}</p>'
                 f'<p style="margin:0 0 16px">{links}</p>')
    if content.nps_links:
        links = "".join(
            f'<a href="{escape(url)}" title="{escape(responses.render("care_email_nps_score", locale, score=n))}" '
            f'style="display:inline-block;margin:0 4px 4px 0;padding:8px 10px;border:1px solid {ACCENT};'
            f'border-radius:6px;color:{ACCENT};text-decoration:none;font-size:16px">{n}</a>'
            for n, url in sorted(content.nps_links.items()))
        stars += (f'<p style="margin:16px 0 8px">{escape(responses.render("care_email_nps_prompt", locale))}</p>'
                  f'<p style="margin:0 0 16px">{links}</p>')
    footer = (f'<p style="margin:24px 0 0;color:#666;font-size:12px">'
              f'{escape(responses.render("care_email_reply_hint", locale))}<br>'
              f'{escape(responses.render("care_email_unsubscribe", locale))} '
              f'<a href="{escape(content.unsubscribe_url)}" style="color:#666">{escape(content.unsubscribe_url)}</a>'
              f'</p>')
    return (f'<!DOCTYPE html><html lang="{escape(locale)}"><head><meta charset="utf-8">'
            f'<title>{escape(content.subject)}</title></head>'
            f'<body style="margin:0;padding:16px;font-family:Arial,sans-serif;color:#222;background:#f6f6f6">'
            f'<div style="max-width:560px;margin:0 auto;padding:20px;background:#fff;border-top:4px solid {ACCENT}">'
            f'<div style="margin:0 0 16px">{header}</div>{paragraphs}{stars}{footer}</div></body></html>')
