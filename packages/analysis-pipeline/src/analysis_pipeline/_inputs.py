"""Checks on what a run is given, made before anything is stored or paid for."""

from __future__ import annotations

from ._errors import InputTooLargeError, InvalidInputError

__all__ = ["check_run_inputs", "check_text"]


def check_text(name: str, value: object) -> str:
    """Return ``value`` if it is non-blank text that is valid Unicode.

    Args:
        name: The argument's name, for the message.
        value: What the caller passed.

    Returns:
        The text unchanged.

    Raises:
        InvalidInputError: Not a string, blank, or holding lone surrogates (text decoded with
            ``surrogateescape`` from bytes that were not UTF-8, or a broken JSON escape), which
            no provider accepts and no store can encode.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{name} must be non-empty")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInputError(
            f"{name} is not valid Unicode: a lone surrogate at character {exc.start} "
            "(decode the source as UTF-8 without 'surrogateescape')"
        ) from None
    return value


def check_run_inputs(bill_id: str, bill_text: str, jurisdiction: str, max_bill_chars: int) -> None:
    """Validate a run's inputs (see :func:`check_text`) and the bill's size.

    Raises:
        InvalidInputError: A blank or invalid argument.
        InputTooLargeError: The bill is longer than ``max_bill_chars``.
    """
    check_text("bill_id", bill_id)
    check_text("jurisdiction", jurisdiction)
    if isinstance(bill_text, str) and len(bill_text) > max_bill_chars:
        raise InputTooLargeError(
            f"the bill has {len(bill_text):,} characters, more than the {max_bill_chars:,} "
            "allowed (PipelineConfig.max_bill_chars); split it or raise the cap",
            limit=max_bill_chars,
            actual=len(bill_text),
        )
    check_text("bill_text", bill_text)
