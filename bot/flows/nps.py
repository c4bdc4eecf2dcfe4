"""NPS answers: a 0–10 button press or typed score ("9", "9/10", "10 điểm", "chín") to the survey the
shop sent, then "why?"; a detractor's why (0–6) opens a follow-up for an agent, as a low rating does.

The score is read by the helpdesk's NPS parser through the customer directory's port, so the bot
never guesses at a number when no survey is waiting for one."""

from __future__ import annotations

import re
import unicodedata

from bot.attachments import evidence_in, with_evidence
from bot.context import TurnContext
from bot.router import Router, awaiting, payload_starts_with

router = Router("nps")

PROMOTER_MIN, DETRACTOR_MAX = 9, 6
_NUMBER = re.compile(r"^\s*(\d{1,2})\s*(?:/\s*10|diem|d)?\s*[.!]*\s*$")
_WORDS = {"khong": 0, "mot": 1, "hai": 2, "ba": 3, "bon": 4, "tu": 4, "nam": 5, "sau": 6, "bay": 7,
          "tam": 8, "chin": 9, "muoi": 10}


def _fold(text: str) -> str:
    text = text.lower().replace("đ", "d")
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


def score_in(text: str) -> int | None:
    """The 0–10 score typed: "9", "9/10", "10 điểm", "7đ", "chín", "chín điểm"; None otherwise."""
    folded = _fold(text or "").strip()
    match = _NUMBER.match(folded)
    if match:
        value = int(match.group(1))
        return value if value <= 10 else None
    words = re.sub(r"\s*/\s*10$", "", re.sub(r"[.!]+$", "", folded).strip()).split()
    if words and words[-1] == "diem":
        words = words[:-1]
    return _WORDS.get(words[0]) if len(words) == 1 else None


def _parse_payload(payload: str | None) -> tuple[int, int] | None:
    survey, _, score = (payload or "")[len("nps:"):].partition(":")
    if not survey.isdigit() or not score.isdigit() or int(score) > 10:
        return None
    return int(survey), int(score)


async def typed_score_for_a_pending_survey(ctx: TurnContext) -> bool:
    """A typed 0–10 while an NPS survey waits for its answer."""
    directory = ctx.services.customers
    if ctx.turn.payload or directory is None or ctx.customer_id is None or score_in(ctx.turn.text) is None:
        return False
    pending = getattr(directory, "pending_nps", None)
    if pending is None:
        return False
    survey = await pending(ctx.customer_id)
    ctx.state["_nps_survey"] = survey
    return survey is not None


@router.handler(payload_starts_with("nps:"))
async def nps_button(ctx: TurnContext) -> None:
    """A 0–10 button was pressed."""
    parsed = _parse_payload(ctx.turn.payload)
    if parsed is None:
        ctx.say("rating_invalid")
        return
    await record(ctx, parsed[0], parsed[1])


@router.handler(typed_score_for_a_pending_survey)
async def typed_score(ctx: TurnContext) -> None:
    """The customer typed a score in answer to the survey."""
    await record(ctx, ctx.state.pop("_nps_survey"), score_in(ctx.turn.text))


@router.handler(awaiting("nps_why"))
async def why(ctx: TurnContext) -> None:
    """Why the score: stored as the comment; a detractor's opens a follow-up for an agent."""
    answer = ctx.state.pop("nps", {})
    ctx.state.pop("awaiting", None)
    score, survey = int(answer.get("score", 10)), answer.get("survey")
    text = ctx.turn.text.strip()
    if ctx.services.customers is not None and ctx.customer_id is not None and survey and text:
        await ctx.services.customers.add_nps_comment(ctx.customer_id, int(survey), text)
    if score > DETRACTOR_MAX:
        ctx.say("nps_thanks")
        return
    evidence = evidence_in(ctx.turn.attachments)
    ctx.evidence_taken = True
    ctx.say("nps_detractor_thanks")
    ctx.escalate("nps_detractor", priority="normal", note=with_evidence(f"NPS {score}/10: {text}", ctx, evidence))


async def record(ctx: TurnContext, survey: int | None, score: int) -> None:
    """Store the score and ask why."""
    ctx.state.pop("_nps_survey", None)
    if ctx.services.customers is not None and ctx.customer_id is not None:
        survey = await ctx.services.customers.record_nps(ctx.customer_id, score, survey)
    ctx.state["nps"] = {"survey": survey, "score": score}
    ctx.state["awaiting"] = "nps_why"
    ctx.say("nps_why", score=score)
