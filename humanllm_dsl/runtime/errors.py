"""How a failed LM call is sorted and told, for every caller with its own retry loop (the compile
pipeline, `humanllm draft`, the judges). Transport resends happen below them, in `calls.CallPolicy`.
DSPy is imported only when an error is sorted, so importing this module stays cheap."""

from __future__ import annotations


def describe(exc: BaseException, limit: int = 300) -> str:
    """`Type: message`, on one line, the message cut to `limit` characters."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text if len(text) <= limit else text[:limit] + '...'}"


CALL_FAILED = "the LM call failed: "  # how the reason of an answer that never came begins


def call_failed(exc: BaseException) -> str:
    """The reason recorded for an answer whose LM call failed after the transport resends."""
    return CALL_FAILED + describe(exc)


def is_lm_error(exc: BaseException) -> bool:
    """A failure of the LM call itself (as opposed to a bad answer or a programming error)."""
    from dspy.utils.exceptions import LMError
    return isinstance(exc, (LMError, TimeoutError))


def is_fatal(exc: BaseException) -> bool:
    """A failure no retry can mend: no key, no credit, a bad configuration or model name."""
    from dspy.utils.exceptions import (LMAuthError, LMBillingError, LMConfigurationError, LMNotConfiguredError,
                                       LMUnsupportedModelError)
    return isinstance(exc, (LMAuthError, LMBillingError, LMConfigurationError, LMNotConfiguredError,
                            LMUnsupportedModelError))


def is_unexpected(exc: BaseException) -> bool:
    """An engine that raised instead of answering (a local model that does not load, say)."""
    from dspy.utils.exceptions import LMUnexpectedError
    return isinstance(exc, LMUnexpectedError)
