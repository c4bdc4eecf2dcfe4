"""The conversation engine: one customer message in, a decision (replies, escalation) out."""

from __future__ import annotations

from collections.abc import Sequence

from bot.attachments import evidence_in
from bot.context import Decision, Parser, Services, Turn, TurnContext
from bot.flows import default_routers, optout, waiting
from bot.flows.complaints import hold_evidence
from bot.knowledge import Knowledge
from bot.language import detect_language
from bot.responses import Responses
from bot.router import Router
from bot.state import DialogueStateStore, MemoryStateStore


class ConversationEngine:
    """Reads a turn with the NLU, lets the first matching router handle it, and remembers state."""

    def __init__(
        self,
        parser: Parser,
        responses: Responses,
        knowledge: Knowledge,
        state_store: DialogueStateStore | None = None,
        *,
        routers: Sequence[Router] | None = None,
        default_locale: str = "vi",
        fallbacks_before_handoff: int = 2,
        template_values: dict[str, str] | None = None,
        services: Services | None = None,
    ):
        self.parser = parser
        self.responses = responses
        self.knowledge = knowledge
        self.state_store = state_store or MemoryStateStore()
        self.routers = list(routers) if routers is not None else default_routers()
        #: what the bot still answers while a person owns the conversation: explicit commands, and a
        #: customer waiting for that person who asks for one again
        self.silent_routers = [optout.router, waiting.router]
        self.default_locale = default_locale
        self.fallbacks_before_handoff = fallbacks_before_handoff
        self.template_values = dict(template_values or {})
        self.services = services or Services()

    async def handle(self, turn: Turn, state: dict | None = None) -> Decision:
        """Decide what to do with one customer message.

        The caller may pass the conversation's state (e.g. read in the same transaction as the
        message); it is then updated in place and left to the caller to save. Otherwise the
        engine loads and saves it through its state store.
        """
        managed = state is None
        if state is None:
            state = await self.state_store.load(turn.conversation_key)
        nlu = await self.parser.aparse(turn.text) if turn.text.strip() else None
        locale = detect_language(turn.text, default=state.get("locale") or turn.locale_hint or self.default_locale)
        decision = Decision(locale=locale, nlu=nlu)
        ctx = TurnContext(turn=turn, nlu=nlu, state=state, locale=locale, responses=self.responses,
                          knowledge=self.knowledge, decision=decision, template_values=self.template_values,
                          services=self.services)
        if turn.human_owned:
            # A person owns the conversation: the bot reads (for the inbox and training) and stays
            # silent, except for commands the customer gives explicitly (opting out of messages) and
            # a waiting customer asking for a person again (told their place, never handed over twice).
            for router in self.silent_routers:
                if await router.dispatch(ctx):
                    if managed:
                        await self.state_store.save(turn.conversation_key, state)
                    break
            decision.handled_by = ctx.handled_by
            return decision
        state["locale"] = locale
        state.setdefault("fallback_limit", self.fallbacks_before_handoff)
        for router in self.routers:
            if await router.dispatch(ctx):
                break
        if not ctx.evidence_taken:
            # a photo sent with a greeting or a question is kept for a complaint that may follow
            hold_evidence(ctx, evidence_in(turn.attachments))
        # A misunderstanding resets the count only by being understood: a photo or sticker answered by
        # the media flow was neither understood nor misunderstood, so the count stays as it was.
        if ctx.handled_by and not ctx.handled_by.startswith(("fallback.", "media.")):
            state["fallbacks"] = 0
        state["turns"] = int(state.get("turns", 0)) + 1
        decision.handled_by = ctx.handled_by
        if managed:
            await self.state_store.save(turn.conversation_key, state)
        return decision

    async def reset(self, conversation_key: str) -> None:
        """Forget a conversation's state (after resolution, so the next one starts fresh)."""
        await self.state_store.delete(conversation_key)
