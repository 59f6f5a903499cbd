"""The ChatAdapter the pipeline runs its programs through, with the per-signature parts of the
prompt computed once instead of on every call.

Profiling a compile at 64 calls in flight showed about 1.5 ms of the ~4.8 ms of CPU per call in
pydantic: DSPy builds a fresh `TypeAdapter` for every value it formats or parses and a fresh
JSON schema for every output field. The prompt text is unchanged (same fields, same schemas);
only the repeated work is gone (bench/bench_compile.py measures it).
"""

from __future__ import annotations

import functools

import dspy
import pydantic


class FastChatAdapter(dspy.ChatAdapter):
    """A dspy.ChatAdapter that caches the field descriptions, structure and task description
    of each signature (signatures are immutable classes, so the text cannot go stale)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("use_json_adapter_fallback", False)
        super().__init__(**kwargs)
        self._texts: dict[tuple[str, type], str] = {}
        cache_type_adapters()

    def _cached(self, kind: str, signature, make) -> str:
        key = (kind, signature)
        text = self._texts.get(key)
        if text is None:
            text = self._texts[key] = make(signature)
        return text

    def format_field_description(self, signature) -> str:
        return self._cached("description", signature, super().format_field_description)

    def format_field_structure(self, signature) -> str:
        return self._cached("structure", signature, super().format_field_structure)

    def format_task_description(self, signature) -> str:
        return self._cached("task", signature, super().format_task_description)


@functools.lru_cache(maxsize=None)
def _type_adapter(annotation) -> pydantic.TypeAdapter:
    return pydantic.TypeAdapter(annotation)


def _cached_type_adapter(annotation, *args, **kwargs) -> pydantic.TypeAdapter:
    if args or kwargs:
        return pydantic.TypeAdapter(annotation, *args, **kwargs)
    try:
        return _type_adapter(annotation)
    except TypeError:  # an unhashable annotation
        return pydantic.TypeAdapter(annotation)


def cache_type_adapters() -> None:
    """Let DSPy's adapter helpers reuse one TypeAdapter per type (they build one per value)."""
    from dspy.adapters import utils

    if getattr(utils, "TypeAdapter", None) is pydantic.TypeAdapter:
        utils.TypeAdapter = _cached_type_adapter
