"""Offline token counting: a free upper bound for budgets, and exact BPE counts (tiktoken).

Two counts, for two jobs:

* :func:`token_upper_bound` loads nothing. Every byte-level BPE tokenizer (OpenAI's
  ``cl100k_base`` and ``o200k_base``, the GPT-2 family most open models build on) turns a
  text's UTF-8 bytes into tokens of at least one byte each, so the byte length never
  undercounts (a hypothesis test checks it against both encodings). Reservations before a call
  use it: a budget can never be overshot by an undercounted prompt, and the provider's real
  usage settles the cost afterwards.
* :func:`count_tokens` is exact for OpenAI models. tiktoken would download its rank files on
  first use; llm-client ships ``cl100k_base`` and ``o200k_base`` gzipped in its own wheel
  (``_tokenizers/``, 2.4 MB, verified by sha256 on load), so counting needs no network, no
  cache directory and no LiteLLM. A table costs ~30-80 MB of memory once loaded, so it is
  loaded on the first exact count only (``import llm_client`` and a budgeted call never do).

Non-OpenAI models (Claude, GLM, Gemini, ...) use different tokenizers that are not available
offline; their exact counts use ``cl100k_base`` as an approximation (as LiteLLM does), which is
good enough to fit a prompt into a context window with some headroom.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from llm_client._errors import LLMClientError

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "TokenizerUnavailableError",
    "count_tokens",
    "encoding_name_for",
    "load_tokenizer",
    "token_upper_bound",
]

# sha256 of each rank file as published by OpenAI (the same hashes tiktoken checks), checked
# on the decompressed bytes of the copies shipped in ``_tokenizers/``.
_SHA256: Final[dict[str, str]] = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
# Split regex and special tokens, as defined in tiktoken_ext/openai_public.py (its constructors
# would download the ranks, so they cannot be called offline; a test checks these match).
_O200K_PAT: Final = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_DEFINITIONS: Final[dict[str, tuple[str, dict[str, int]]]] = {
    "cl100k_base": (
        r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
        {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
    "o200k_base": (_O200K_PAT, {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
}
_DEFAULT_ENCODING: Final = "cl100k_base"

# OpenAI cookbook ("How to count tokens with tiktoken"): every message is wrapped as
# <|start|>{role/name}\n{content}<|end|>\n, and every reply is primed with <|start|>assistant.
_TOKENS_PER_MESSAGE: Final = 3
_TOKENS_PER_NAME: Final = 1
_REPLY_PRIMING: Final = 3

_encodings: dict[str, tiktoken.Encoding] = {}
_lock = threading.Lock()


class TokenizerUnavailableError(LLMClientError, RuntimeError):
    """The tokenizer files shipped with llm-client are missing or corrupt (a broken install)."""


def _rank_bytes(name: str) -> bytes:
    """The rank file of an encoding, from the gzipped copy in llm-client's own package."""
    import gzip
    from importlib import resources

    resource = resources.files("llm_client").joinpath(f"_tokenizers/{name}.tiktoken.gz")
    try:
        return gzip.decompress(resource.read_bytes())
    except (OSError, EOFError) as exc:
        raise TokenizerUnavailableError(
            f"tokenizer {name!r} is missing from the llm-client package ({exc}); "
            "reinstall llm-client"
        ) from exc


def _load_encoding(name: str) -> tiktoken.Encoding:
    """Build a tiktoken Encoding from the shipped rank file (verified by sha256)."""
    import tiktoken  # deferred: only needed when counting

    data = _rank_bytes(name)
    if hashlib.sha256(data).hexdigest() != _SHA256[name]:
        raise TokenizerUnavailableError(f"shipped tokenizer {name!r} is corrupt (sha256 mismatch)")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    pat_str, special_tokens = _DEFINITIONS[name]
    return tiktoken.Encoding(
        name=name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=special_tokens
    )


def _encoding(name: str) -> tiktoken.Encoding:
    encoding = _encodings.get(name)
    if encoding is None:
        encoding = _load_encoding(name)
        _encodings.setdefault(name, encoding)
    return _encodings[name]


def load_tokenizer(model: str | None = None) -> None:
    """Load (and cache) the tokenizer for ``model`` now rather than on the first count.

    Loading takes a few hundred milliseconds of CPU; async callers can run this once in a
    worker thread (``await asyncio.to_thread(load_tokenizer, model)``) so the first
    :func:`count_tokens` does not block their event loop.

    Args:
        model: Model whose encoding to load; None loads the default ``cl100k_base``.

    Raises:
        TokenizerUnavailableError: If the shipped tokenizer files are missing.
    """
    _encoding(encoding_name_for(model))


def encoding_name_for(model: str | None) -> str:
    """Name of the tiktoken encoding used to count tokens for ``model``.

    Args:
        model: Any model string (provider prefixes and OpenRouter slugs are stripped), or None.

    Returns:
        ``o200k_base`` for GPT-4o/4.1/5 and o-series models, ``cl100k_base`` otherwise.
    """
    if not model:
        return _DEFAULT_ENCODING
    name = model.strip().lower().rsplit("/", 1)[-1].split(":", 1)[0]
    try:
        from tiktoken.model import encoding_name_for_model

        found = encoding_name_for_model(name)
    except (KeyError, ImportError):
        return _DEFAULT_ENCODING
    return found if found in _SHA256 else _DEFAULT_ENCODING


def _content_text(content: object) -> str:
    """Text of a message's content: a string, or OpenAI content parts (text parts only)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        texts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, str):
                texts.append(part)
        return "".join(texts)
    return str(content)


def count_tokens(
    text_or_messages: str | Sequence[Mapping[str, Any]], model: str | None = None
) -> int:
    """Count tokens offline with the model's real tokenizer (or cl100k_base when unknown).

    A string counts as its plain encoding. A list of OpenAI-style chat messages counts the way
    OpenAI bills it: each message's fields plus 3 tokens of framing per message (1 more for a
    ``name``), plus 3 tokens priming the reply. Tool calls are counted as their JSON text.
    The first count loads the encoding's table (tens of MB); where an upper bound will do,
    :func:`token_upper_bound` costs nothing.

    Args:
        text_or_messages: A string, or chat messages (``{"role": ..., "content": ...}``).
        model: Model the text is for; picks the encoding (see :func:`encoding_name_for`).

    Returns:
        The number of tokens.

    Raises:
        TypeError: If ``text_or_messages`` is neither a string nor a sequence of mappings.
        TokenizerUnavailableError: If the shipped tokenizer files are missing.
    """
    encoding_name = encoding_name_for(model)
    return _total(text_or_messages, functools.partial(_count, encoding_name))


def token_upper_bound(text_or_messages: str | Sequence[Mapping[str, Any]]) -> int:
    """A count that is never below :func:`count_tokens` for any model, with no tokenizer.

    Each text counts as its length in UTF-8 bytes (every BPE token is at least one byte),
    chat framing as in :func:`count_tokens`. It loads nothing and takes microseconds, at the
    price of overcounting (about 4x for English): right for reserving budget before a call,
    whose real usage then settles the cost.

    Args:
        text_or_messages: A string, or chat messages (``{"role": ..., "content": ...}``).

    Returns:
        An upper bound on the number of tokens.

    Raises:
        TypeError: If ``text_or_messages`` is neither a string nor a sequence of mappings.
    """
    return _total(text_or_messages, _utf8_length)


def _utf8_length(text: str) -> int:
    # surrogatepass: a lone surrogate (tiktoken encodes it as U+FFFD, 3 bytes) still counts.
    return len(text.encode("utf-8", "surrogatepass"))


def _total(text_or_messages: str | Sequence[Mapping[str, Any]], count: Callable[[str], int]) -> int:
    """``count`` of a string, or of chat messages with OpenAI's per-message framing."""
    if isinstance(text_or_messages, str):
        return count(text_or_messages)
    if not isinstance(text_or_messages, Sequence):
        raise TypeError(
            f"expected a str or a list of messages, got {type(text_or_messages).__name__}"
        )
    total = _REPLY_PRIMING
    for message in text_or_messages:
        if not isinstance(message, Mapping):
            raise TypeError(f"each message must be a mapping, got {type(message).__name__}")
        total += _TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                text = _content_text(value)
            elif key == "tool_calls" and value is not None:
                import json

                text = json.dumps(value, separators=(",", ":"), default=str)
            elif isinstance(value, str):
                text = value
            else:
                continue
            total += count(text)
            if key == "name":
                total += _TOKENS_PER_NAME
    return total


def _count(encoding_name: str, text: str) -> int:
    # Long texts (a bill, its sources, a draft) recur in every step's prompt and every
    # attempt's estimate, usually inside a larger prompt that is new each time: count them
    # once per line and add up, which saves milliseconds of CPU per call.
    if len(text) >= _CACHE_MIN_CHARS:
        return _count_long(encoding_name, text)
    return len(_encoding(encoding_name).encode(text, disallowed_special=()))


_CACHE_MIN_CHARS = 2_000
# A line that starts with a letter or digit. Both encodings' split patterns end a pre-token
# at such a point whatever surrounds it (a run of whitespace ending in a newline is never
# joined to a letter or digit, and neither letters nor digits join a preceding newline), and
# BPE never merges across pre-tokens, so the lines' counts add up to the whole text's count
# exactly (tests check it on every bill and on generated text).
_LINE_START = re.compile(r"(?<=\n)(?=[^\W_])")


@functools.lru_cache(maxsize=256)
def _count_long(encoding_name: str, text: str) -> int:
    return sum(_count_line(encoding_name, line) for line in _LINE_START.split(text))


@functools.lru_cache(maxsize=32_768)
def _count_line(encoding_name: str, text: str) -> int:
    return len(_encoding(encoding_name).encode(text, disallowed_special=()))
