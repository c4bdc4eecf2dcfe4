"""Report routes: the KPI summary (JSON), the CSV export, the filter choices, and the reports page.

The API answers a bearer token or the browser's session cookie; the page is a server-rendered shell
(the inbox's look, helpers and security headers) that a script fills from the API and draws with
Chart.js, served from this server like everything else on the page.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles

from connectors import CONNECTORS
from helpdesk.agents.teams import team_names
from helpdesk.agents.deps import CurrentAgent
from helpdesk.core.deps import ClockDep, EngineDep, SessionDep, SettingsDep
from helpdesk.core.errors import Forbidden
from helpdesk.core.types import MAX_ROW_ID
from helpdesk.admin.api import nav_strings
from helpdesk.inbox.api import (
    HELPDESK_DIR,
    LANGUAGES,
    InboxStaticFiles,
    _session_agent,
    page_language,
    render_page,
    strings_in,
    ui_strings,
)
from helpdesk.reports import export, nps, retention, service
from helpdesk.reports.schemas import AgentChoice, ReportOptions, ReportSummary
from helpdesk.sla.service import load_config

STATIC_DIR = HELPDESK_DIR / "static" / "reports"
VENDOR_DIR = HELPDESK_DIR / "static" / "vendor"
#: the inbox's strings the page shares (navigation, language switch)
SHARED_KEYS = ("app.name", "app.inbox", "nav.logout", "nav.language", "nav.reports")

router = APIRouter(tags=["reports"])
pages = APIRouter(include_in_schema=False)

_PERIOD_HELP = ("ISO date (a whole shop-local day; `to` includes it) or date-time (a wall-clock time is "
                "the shop's; `to` excludes it)")


def report_query(
    agent: CurrentAgent,
    session: SessionDep,
    settings: SettingsDep, clock: ClockDep,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description=f"Start: {_PERIOD_HELP}. "
                                       "Default: 30 days before `to`.", examples=["2026-03-01"])] = None,
    to: Annotated[str | None, Query(max_length=40, description=f"End: {_PERIOD_HELP}. Default: end of today.",
                                    examples=["2026-03-31"])] = None,
    channel: Annotated[str | None, Query(max_length=32, description="Only this channel")] = None,
    team: Annotated[str | None, Query(max_length=100, description="Only this team")] = None,
    agent_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID,
                                          description="Only those assigned to this agent")] = None,
) -> service.ReportQuery:
    """The report asked for, checked against what the caller may see."""
    return service.build_query(session, agent, timezone=settings.shop.timezone, now=clock.now(),
                               from_text=from_, to_text=to, channel=channel, team=team, agent_id=agent_id)


ReportQueryDep = Annotated[service.ReportQuery, Depends(report_query)]

_NOT_ALLOWED = {401: {"description": "No bearer token or session"},
                403: {"description": "Not a supervisor or admin, or a team that is not the caller's"},
                400: {"description": "`from` is after `to`"},
                422: {"description": "A date, date-time or filter that cannot be read"}}


@router.get("/api/reports/summary", response_model=ReportSummary, responses=_NOT_ALLOWED,
            summary="After-sales KPIs of a period")
def read_summary(query: ReportQueryDep, session: SessionDep, response: Response) -> ReportSummary:
    """CSAT, ratings, first response and resolution times (business seconds), SLA compliance,
    containment, escalations and complaint reasons, recontacts, after-delivery ratings and volume,
    over the conversations started in the period (admins: all; supervisors: their teams').

    Rates are fractions from 0 to 1, or null when there is nothing to measure."""
    response.headers["Cache-Control"] = "no-store"
    summary = service.summarize(session, query, load_config(session, query.period.tz))
    summary.repeat_purchase_rate_90d = retention.repeat_rate_90d(session, query.period, query.now)
    return summary


@router.get(
    "/api/reports/export.csv", response_class=StreamingResponse, summary="The report's conversations as CSV",
    responses={**_NOT_ALLOWED, 200: {
        "description": "UTF-8 CSV with a header row, one row per conversation (formula-like cells quoted)",
        "content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def export_csv(
    query: ReportQueryDep, session: SessionDep, engine: EngineDep,
    excel: Annotated[bool, Query(description="Start with a byte order mark so Excel reads UTF-8")] = False,
) -> StreamingResponse:
    """One row per conversation of the period and filters, with what the summary counts about it."""
    config = load_config(session, query.period.tz)
    return StreamingResponse(
        export.csv_chunks(engine, query, config, excel=excel), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.file_name(query)}"',
                 "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})


@router.get("/api/reports/options", response_model=ReportOptions,
            responses={status: _NOT_ALLOWED[status] for status in (401, 403)},
            summary="What the caller may filter reports by")
def read_options(agent: CurrentAgent, session: SessionDep, settings: SettingsDep) -> ReportOptions:
    """Channels, the teams the caller may report on, and their agents."""
    teams, agents = service.filter_choices(session, service.reporting_teams(session, agent))
    return ReportOptions(channels=sorted(CONNECTORS), teams=teams,
                         agents=[AgentChoice(id=i, name=name) for i, name in agents],
                         timezone=settings.shop.timezone, role=agent.role)


@router.get("/api/reports/nps", response_model=nps.NpsReport, responses=_NOT_ALLOWED,
            summary="NPS of a period: trend by month, by channel and product, verbatims")
def read_nps(query: ReportQueryDep, session: SessionDep, response: Response) -> nps.NpsReport:
    """The Net Promoter Score of the answers given in the period (% promoters 9–10 − % detractors 0–6),
    its shop-local monthly trend, by channel and by product, and the newest comments. Shop-wide: only
    the channel filter applies."""
    response.headers["Cache-Control"] = "no-store"
    return nps.nps_report(session, query.period, query.channel)


@router.get("/api/reports/nps.csv", response_class=Response, summary="The period's NPS answers as CSV",
            responses={**_NOT_ALLOWED, 200: {"description": "UTF-8 CSV, one row per answer",
                                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_nps_csv(query: ReportQueryDep, session: SessionDep,
                   excel: Annotated[bool, Query(description="Start with a byte order mark for Excel")] = False,
                   ) -> Response:
    """One row per NPS answer of the period: when, score, category, channel, product, order, comment."""
    return csv_response(nps.NPS_COLUMNS, nps.nps_rows(session, query.period, query.channel), excel,
                        f"caredesk-nps-{query.period.first_day}-{query.period.last_day}.csv")


@router.get("/api/reports/retention", response_model=retention.RetentionReport, responses=_NOT_ALLOWED,
            summary="Repeat purchases, cohorts, churn and lifetime value of the period's new customers")
def read_retention(query: ReportQueryDep, session: SessionDep, settings: SettingsDep,
                   response: Response) -> retention.RetentionReport:
    """From the shop's orders (shop-wide; filters other than the period do not apply): repeat-purchase
    rates within 30/90/180 days, monthly cohort retention, churn (no purchase within
    CAREDESK_CARE__CHURN_DAYS), average lifetime value, and the 90-day repeat rate by NPS, CSAT, support
    contact and SLA."""
    response.headers["Cache-Control"] = "no-store"
    return retention.retention_report(session, query.period, query.now, settings.care.churn_days)


@router.get("/api/reports/retention.csv", response_class=Response, summary="The retention report as CSV",
            responses={**_NOT_ALLOWED, 200: {"description": "UTF-8 CSV: one row per figure",
                                             "content": {"text/csv": {"schema": {"type": "string"}}}}})
def export_retention_csv(query: ReportQueryDep, session: SessionDep, settings: SettingsDep,
                         excel: Annotated[bool, Query(description="Start with a byte order mark for Excel")] = False,
                         ) -> Response:
    """The retention report as (section, key, customers, value) rows: repeat rates, cohort cells,
    churn, lifetime value and segments."""
    report = retention.retention_report(session, query.period, query.now, settings.care.churn_days)
    return csv_response(retention.CSV_COLUMNS, retention.csv_rows(report), excel,
                        f"caredesk-retention-{query.period.first_day}-{query.period.last_day}.csv")


def csv_response(columns, rows, excel: bool, name: str) -> Response:
    """A small report table as a CSV download (formula-like cells made inert)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows([export.safe_cell(value) for value in row] for row in rows)
    return Response((export.BOM if excel else "") + buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store",
                             "X-Content-Type-Options": "nosniff"})


# -- the page ------------------------------------------------------------------------------------------


def report_strings(language: str) -> dict[str, str]:
    """The page's strings in a language: its own, plus the inbox's and the shared navigation's."""
    shared = ui_strings(language)
    own = strings_in(STATIC_DIR / "i18n", language)
    return {**{key: shared[key] for key in SHARED_KEYS if key in shared}, **nav_strings(language), **own}


def _translate(strings: dict[str, str]):
    def translate(key: str, **values: Any) -> str:
        text = strings.get(key, key)
        for name, value in values.items():
            text = text.replace("{" + name + "}", str(value))
        return text
    return translate


def _to_login(request: Request) -> RedirectResponse:
    """To the login page, coming back to this very report (filters included) afterwards."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/inbox/login?next={quote(here, safe='/')}", status_code=303)


@pages.get("/reports")
def reports_page(request: Request, session: SessionDep) -> Response:
    """The reports page for supervisors and admins (others are told it is not for them)."""
    agent = _session_agent(request, session)
    if agent is None:
        return _to_login(request)
    language = page_language(request)
    allowed = True
    try:
        service.reporting_teams(session, agent)
    except Forbidden:
        allowed = False
    me = {"id": agent.id, "name": agent.name, "role": agent.role, "teams": team_names(session, agent)}
    boot = {"lang": language, "strings": {lang: report_strings(lang) for lang in LANGUAGES}, "agent": me,
            "allowed": allowed}
    return render_page(request, "reports/reports.html", status_code=200 if allowed else 403,
                       rt=_translate(report_strings(language)), allowed=allowed, boot=boot,
                       nav_active="reports", nav_role=agent.role)


def reports_static_files() -> StaticFiles:
    """The page's script, styles and strings, to mount at ``/reports/static``."""
    return InboxStaticFiles(directory=STATIC_DIR)


def vendor_static_files() -> StaticFiles:
    """Third-party browser libraries shipped with CareDesk (Chart.js), to mount at ``/static/vendor``."""
    return InboxStaticFiles(directory=VENDOR_DIR)

