"""prime-radiant's chat endpoint on llm-common: conversation memory plus page context.

Run it (offline with no API keys: the test model answers)::

    uv run uvicorn examples.prime_radiant_chat:app

``POST /chat`` takes ``{user_id, message, page}``: the user's turn is saved, the context for the
model is built from the user's history (within a token budget, with a rolling summary of older
turns) and from what the page shows (portfolio holdings, tax-planning figures), the reply is
saved and returned. ``POST /chat/stream`` does the same, streaming the reply as plain text
(the reply is saved, and its cost settled, when the stream ends). ``GET
/chat/history?user_id=...`` lists the conversation.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from conversation_memory import (
    ConversationMemory,
    LocalMessageStore,
    MessageStore,
    PageContextRegistry,
)
from fastapi import APIRouter, FastAPI, HTTPException
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

SYSTEM_PROMPT = (
    "You are prime-radiant, a careful financial-planning assistant. Use the page context; "
    "say when you are unsure; never invent account figures."
)

# Demo data standing in for prime-radiant's portfolio and tax services.
PORTFOLIOS: dict[str, str] = {}
TAX_PLANS: dict[str, str] = {}


class ChatRequest(BaseModel):
    """One user turn."""

    user_id: str
    message: str = Field(min_length=1)
    page: str | None = None


def page_registry() -> PageContextRegistry:
    """Page-context providers shared by every user's memory."""
    pages = PageContextRegistry(timeout=2.0)

    async def portfolio(user_id: str) -> str | None:
        return PORTFOLIOS.get(user_id)

    async def tax_planning(user_id: str) -> str | None:
        return TAX_PLANS.get(user_id)

    pages.register("portfolio", portfolio)
    pages.register("tax-planning", tax_planning)
    return pages


def create_router(llm: Any, store: MessageStore, *, model: Any = "test") -> APIRouter:
    """The chat router.

    Args:
        llm: An ``llm_client.LLMClient``.
        store: Where conversations live (local, PostgreSQL or Supabase message store).
        model: Model (or fallback chain) answering the chat.
    """
    router = APIRouter()
    pages = page_registry()

    def memory_for(user_id: str) -> ConversationMemory:
        try:
            return ConversationMemory(
                store, user_id, system_prompt=SYSTEM_PROMPT, page_contexts=pages
            )
        except ValueError as exc:  # conversation-memory's invalid-identifier errors
            raise HTTPException(422, str(exc)) from None

    @router.post("/chat")
    async def chat(body: ChatRequest) -> dict[str, Any]:
        memory = memory_for(body.user_id)
        await memory.save_message("user", body.message, page=body.page)
        context = await memory.get_context(page=body.page)
        reply = await llm.chat(context, model=model, step="chat")
        await memory.save_message("assistant", reply, page=body.page)
        return {"reply": reply, "context": context}

    @router.post("/chat/stream")
    async def chat_stream(body: ChatRequest) -> StreamingResponse:
        memory = memory_for(body.user_id)
        await memory.save_message("user", body.message, page=body.page)
        context = await memory.get_context(page=body.page)
        # Opened here, so a provider failure is an error status rather than a cut 200.
        stream = await llm.stream(context, model=model, step="chat").open()

        async def deltas() -> AsyncIterator[str]:
            try:
                async for delta in stream:
                    yield delta
            finally:
                await stream.aclose()  # bills what was generated, also when the client left
                if stream.text:
                    await memory.save_message("assistant", stream.text, page=body.page)

        return StreamingResponse(deltas(), media_type="text/plain; charset=utf-8")

    @router.get("/chat/history")
    async def history(user_id: str, limit: int = 50) -> list[dict[str, Any]]:
        messages = await memory_for(user_id).history(limit=limit)
        return [{"role": m.role, "content": m.content, "page": m.page} for m in messages]

    return router


def create_app(*, tune_process: bool = True) -> FastAPI:
    """The chat app; ``tune_process`` as in ``affordabot_admin.create_app``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from llm_client import LLMClient, prepare_for_serving

        store = LocalMessageStore(
            Path(os.environ.get("LLM_COMMON_DIR") or ".llm-common") / "chat.sqlite3"
        )
        async with LLMClient() as llm:
            model = os.environ.get("CHAT_MODEL", "test")
            app.include_router(create_router(llm, store, model=model))
            if tune_process:
                prepare_for_serving()
            yield
        await store.aclose()

    return FastAPI(title="prime-radiant chat (llm-common example)", lifespan=lifespan)


app = create_app()
