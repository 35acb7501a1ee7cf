"""count_tokens: a real tokenizer, offline, from the rank files llm-client ships; the free bound."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llm_client._tokens import (
    _encoding,
    count_tokens,
    encoding_name_for,
    load_tokenizer,
    token_upper_bound,
)

# The OpenAI cookbook's "How to count tokens with tiktoken" example conversation: the API
# reported 129 prompt tokens for gpt-4-0613 (cl100k_base) and 124 for gpt-4o (o200k_base).
COOKBOOK_MESSAGES = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on "
        "opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    },
]


@pytest.mark.parametrize(
    ("text", "model", "expected"),
    [
        ("hello world", None, 2),
        ("hello world", "gpt-4", 2),
        ("hello world", "gpt-4o", 2),
        ("", None, 0),
        ("tiktoken is great!", "gpt-4", 6),
        ("antidisestablishmentarianism", "gpt-4", 6),
        ("<|endoftext|>", None, 7),  # special-token text in user input is plain text
    ],
)
def test_known_strings(text: str, model: str | None, expected: int) -> None:
    assert count_tokens(text, model) == expected


async def test_tokenizer_can_be_loaded_off_the_event_loop() -> None:
    await asyncio.to_thread(load_tokenizer, "gpt-4o")
    assert count_tokens("hello world", "gpt-4o") == 2


def test_encodings_decode_back_to_the_input() -> None:
    text = "Grüße aus Zürich — 2026年10月1日 🙂 def f(x): return x**2"
    for name in ("cl100k_base", "o200k_base"):
        encoding = _encoding(name)
        assert encoding.decode(encoding.encode(text)) == text


def test_chat_messages_match_the_cookbook_counts() -> None:
    assert count_tokens(COOKBOOK_MESSAGES, "gpt-4-0613") == 129
    assert count_tokens(COOKBOOK_MESSAGES, "gpt-4o") == 124
    assert count_tokens(COOKBOOK_MESSAGES, "openrouter/openai/gpt-4o") == 124


def test_message_overhead() -> None:
    assert count_tokens([]) == 3  # reply priming only
    one = [{"role": "user", "content": "hello world"}]
    assert count_tokens(one) == 3 + 3 + 1 + 2  # framing + priming + "user" + "hello world"
    named = [{"role": "user", "name": "bob", "content": "hello world"}]
    assert count_tokens(named) == count_tokens(one) + 1 + 1  # "bob" + name overhead


def test_content_parts_and_none_content() -> None:
    parts = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "hello "},
                {"type": "image_url", "image_url": {"url": "data:..."}},
                {"type": "text", "text": "world"},
            ],
        }
    ]
    assert count_tokens(parts) == count_tokens([{"role": "user", "content": "hello world"}])
    tool_call = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
        }
    ]
    assert count_tokens(tool_call) > count_tokens([{"role": "assistant", "content": None}])


@pytest.mark.parametrize("bad", [42, [42], ["just a string"], None])
def test_bad_input_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        count_tokens(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        (None, "cl100k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("openai/gpt-4.1", "o200k_base"),
        ("openrouter/openai/gpt-4o:nitro", "o200k_base"),
        ("claude-sonnet-4-5", "cl100k_base"),  # not available offline: approximate
        ("zai/glm-4.6", "cl100k_base"),
        ("text-davinci-003", "cl100k_base"),  # p50k not bundled: approximate
    ],
)
def test_encoding_choice(model: str | None, encoding: str) -> None:
    assert encoding_name_for(model) == encoding


def test_our_encodings_equal_tiktokens_own_definitions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import gzip
    import hashlib
    from importlib import resources

    import tiktoken

    # tiktoken's cache: each rank file under the sha1 of its download URL. Filled from the
    # copies llm-client ships, so tiktoken's own constructors run and nothing is downloaded.
    url = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
    for name in ("cl100k_base", "o200k_base"):
        shipped = resources.files("llm_client").joinpath(f"_tokenizers/{name}.tiktoken.gz")
        key = hashlib.sha1(url.format(name).encode(), usedforsecurity=False).hexdigest()
        (tmp_path / key).write_bytes(gzip.decompress(shipped.read_bytes()))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    for name in ("cl100k_base", "o200k_base"):
        reference = tiktoken.get_encoding(name)
        ours = _encoding(name)
        assert ours._pat_str == reference._pat_str
        assert ours._special_tokens == reference._special_tokens
        assert ours.n_vocab == reference.n_vocab
        sample = "The quick brown fox — 12345 — jumps over the lazy dog.\n\n  indented"
        assert ours.encode(sample) == reference.encode(sample)


def test_works_offline_with_empty_home_and_cache_dirs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TIKTOKEN", "DATA_GYM", "XDG_"))
    }
    env.update(
        HOME=str(empty),
        TMPDIR=str(empty),
        XDG_CACHE_HOME=str(empty),
        # Any download attempt would go to a closed port and fail.
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        ALL_PROXY="http://127.0.0.1:9",
        NO_PROXY="",
    )
    code = textwrap.dedent(
        """
        import sys
        import llm_client._tokens as tokens
        assert "tiktoken" not in sys.modules  # imported on first count, not at import
        assert tokens.count_tokens("hello world") == 2
        assert tokens.count_tokens("hello world", "gpt-4o") == 2
        leaked = sorted(m for m in sys.modules if m == "litellm" or m.startswith("litellm."))
        assert not leaked, leaked
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert list(empty.iterdir()) == []  # nothing cached or downloaded anywhere


BILLS = Path(__file__).resolve().parents[3] / "../shared/data/bills"


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_long_texts_count_exactly_as_one_encode(encoding: str) -> None:
    # Long texts are counted line by line (cached); the sum must be the exact count.
    model = "gpt-4o" if encoding == "o200k_base" else "gpt-4"
    tokenizer = _encoding(encoding)
    bills = sorted(BILLS.glob("*.txt"))
    assert len(bills) >= 12  # the bills and their summaries
    for bill in bills:
        text = bill.read_text()
        prompt = f"Analyse this bill.\n\n{text}\n\nSources:\n\n[1] https://x.gov/a\n\n/path\n\n"
        for sample in (text, prompt, text.replace("\n", "\r\n")):
            assert count_tokens(sample, model) == len(
                tokenizer.encode(sample, disallowed_special=())
            ), bill.name


_PIECES = st.sampled_from(
    ["\n", "\n\n", "\n\n\n", " \n\n", "\r\n\r\n", "/", "//", ".", "'s", "’", " ", "  ", "\t",
     "é", "\u0301", "日本", "٣", "12345", "A", "z", "_", "<|endoftext|>", "$1,000", "SEC. 2."]
)  # fmt: skip


@given(st.lists(st.one_of(_PIECES, st.text(max_size=12)), min_size=1, max_size=400))
@settings(max_examples=300, deadline=None)
def test_line_by_line_counting_is_exact_for_any_text(parts: list[str]) -> None:
    text = "".join(parts)
    text += "x" * max(0, 2_000 - len(text))  # long enough for the line-by-line path
    for model, encoding in (("gpt-4", "cl100k_base"), ("gpt-4o", "o200k_base")):
        expected = len(_encoding(encoding).encode(text, disallowed_special=()))
        assert count_tokens(text, model) == expected


_MESSAGE = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=300)},
    optional={"name": st.text(max_size=20)},
)


@given(st.one_of(st.text(max_size=3_000), st.lists(st.one_of(_PIECES, st.text()), max_size=300)))
@settings(max_examples=400, deadline=None)
def test_upper_bound_never_undercounts_any_text_in_either_encoding(text: str | list[str]) -> None:
    text = text if isinstance(text, str) else "".join(text)
    bound = token_upper_bound(text)
    for model in ("gpt-4", "gpt-4o"):  # cl100k_base, o200k_base
        assert bound >= count_tokens(text, model)


@given(st.lists(_MESSAGE, max_size=6))
@settings(max_examples=200, deadline=None)
def test_upper_bound_never_undercounts_chat_messages(messages: list[dict[str, str]]) -> None:
    bound = token_upper_bound(messages)
    for model in ("gpt-4", "gpt-4o", "claude-sonnet-4-5", None):
        assert bound >= count_tokens(messages, model)


def test_upper_bound_loads_no_tokenizer() -> None:
    code = textwrap.dedent(
        """
        import sys
        from llm_client._tokens import token_upper_bound
        assert token_upper_bound([{"role": "user", "content": "héllo wörld"}]) == 3 + 3 + 4 + 13
        assert token_upper_bound("日本") == 6
        assert "tiktoken" not in sys.modules
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
