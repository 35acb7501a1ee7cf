"""The default token count loads no tokenizer and never undercounts (issue 14)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conversation_memory._tokens import bound_tokens, content_tokens
from hypothesis import example, given, settings
from hypothesis import strategies as st
from llm_client import count_tokens

# Text of every kind: any Unicode (surrogates excluded: refused before storing), plus the
# shapes tokenizers treat specially: special-token markers, long digit runs, whitespace runs,
# repeated punctuation, mixed scripts and emoji sequences.
texts = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"]), max_size=400),
    st.lists(
        st.sampled_from(
            [
                "<|endoftext|>",
                "<|im_start|>",
                "1234567890",
                "   ",
                "\n\n",
                "!!!???",
                "Roth IRA",
                "\u00e9\u20ac",
                "\U0001f4b6\u200d\U0001f9d1",
                "\u4e2d\u6587",
                "\u0627\u0644\u0639\u0631\u0628\u064a\u0629",
                " 's",
            ]
        ),
        max_size=60,
    ).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(texts, st.sampled_from([None, "gpt-4o", "gpt-4", "openrouter/anthropic/claude-3.5"]))
@example("<|endoftext|>" * 20, None)
@example("\U0001f9d1\u200d\U0001f4bb" * 50, "gpt-4o")
def test_the_cheap_bound_never_undercounts(text: str, model: str | None) -> None:
    assert bound_tokens(text) >= count_tokens(text, model)
    assert content_tokens(text, model) == bound_tokens(text)
    assert content_tokens(text, model, exact=True) == count_tokens(text, model)


@pytest.mark.parametrize(("exact", "loaded"), [(False, False), (True, True)])
def test_only_exact_counts_load_a_tokenizer(tmp_path: Path, exact: bool, loaded: bool) -> None:
    script = f"""
import asyncio, sys, uuid
from conversation_memory import ConversationMemory, LocalMessageStore

async def main():
    async with LocalMessageStore({str(tmp_path / "m.sqlite3")!r}) as store:
        memory = ConversationMemory(
            store, uuid.uuid4(), system_prompt="Be careful.", exact_tokens={exact}
        )
        await memory.save_message("user", "How much can I put into my Roth IRA?")
        await memory.save_message("assistant", "Up to the annual limit. " * 200)
        await memory.save_message("user", "And my spouse?")
        await memory.get_context()
    print("tiktoken" in sys.modules)

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(loaded)
