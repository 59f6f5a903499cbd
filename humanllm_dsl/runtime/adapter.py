"""The ChatAdapter the pipeline runs its programs through, with the per-signature parts of the
prompt computed once instead of on every call, and a parser for the answers real models write.

Profiling a compile at 64 calls in flight showed about 1.5 ms of the ~4.8 ms of CPU per call in
pydantic: DSPy builds a fresh `TypeAdapter` for every value it formats or parses and a fresh
JSON schema for every output field. The prompt text is unchanged (same fields, same schemas);
only the repeated work is gone (bench/bench_compile.py measures it).
"""

from __future__ import annotations

import ast
import functools
import json
import re

import dspy
import pydantic
from dspy.utils.exceptions import AdapterParseError

from .channels import strip_thinking


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

    def user_message_output_requirements(self, signature) -> str:
        """The reminder at the end of each request, saying what the system message says: a
        non-text field is a JSON value following the schema given there (DSPy's own reminder
        asks for "a valid Python list", which contradicts the schema)."""
        def kind(field) -> str:
            return "" if field.annotation is str else " (JSON, following its schema above)"

        return self._cached("reminder", signature, lambda sig: (
            "Respond with the output fields in this order: "
            + ", then ".join(f"`[[ ## {name} ## ]]`{kind(field)}" for name, field in sig.output_fields.items())
            + ", and end with `[[ ## completed ## ]]`."))

    def parse(self, signature, completion: str) -> dict:
        """DSPy's field-marker format, and what real models write instead: `<think>` blocks, a
        preamble, fences around the answer or a value, a JSON object of the output fields, and a
        missing completion marker after complete content. An answer cut off (even with
        finish_reason "stop") raises AnswerProblem with `cut` set; a cut value is never repaired."""
        return _Parser(signature, completion).parse()


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


# ---- parsing what real models write ----------------------------------------------------------
COMPLETED = "[[ ## completed ## ]]"
_HEADER = re.compile(r"^\s*(?:\*\*|#{1,6}\s*)?\[\[\s*##\s*(\w+)\s*##\s*\]\](?:\*\*)?\s*(.*)$")
_FENCE = re.compile(r"^\s*```[\w-]*[ \t]*\n(.*?)\n?```\s*$", re.S)
_COMPLETE_END = re.compile(r"""[.!?…"'”’)\]}*]\s*$""")


class AnswerProblem(AdapterParseError):
    """An answer that cannot be used, with what is wrong in the model's own terms (`problem`);
    `cut` when it stopped before its end."""

    def __init__(self, signature, completion: str, problem: str, cut: bool = False):
        self.problem, self.cut = problem, cut
        super().__init__(adapter_name="FastChatAdapter", signature=signature, lm_response=completion,
                         message=problem)


def _unfence(value: str) -> str:
    found = _FENCE.match(value)
    return found.group(1) if found else value


def _balanced(text: str) -> bool:
    """Whether every JSON string, array and object in `text` is closed."""
    stack, in_string, escaped = [], False, False
    for c in text:
        if in_string:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        elif c in "[{":
            stack.append("]" if c == "[" else "}")
        elif c in "]}":
            if not stack or stack.pop() != c:
                return False
    return not in_string and not stack


def _load_strict(value: str):
    """JSON or a Python literal, exactly as written; raises ValueError otherwise."""
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        pass
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
        raise ValueError(str(exc)) from None


def _json_answer(text: str) -> dict | None:
    """A JSON object written instead of field markers (fenced or after a preamble), or None."""
    fenced = re.search(r"```[\w-]*[ \t]*\n(.*?)(?:\n?```|\Z)", text, re.S)
    body = fenced.group(1) if fenced else text
    start = body.find("{")
    if start < 0:
        return None
    try:
        obj, _ = json.JSONDecoder().raw_decode(body[start:])
    except json.JSONDecodeError:
        return None
    return obj if isinstance(obj, dict) else None


def _looks_cut_json(text: str) -> bool:
    body = re.sub(r"```[\w-]*", "", text)
    starts = [i for i in (body.find("{"), body.find("[")) if i >= 0]
    return bool(starts) and not _balanced(body[min(starts):])


def _validation_text(field: str, exc: pydantic.ValidationError) -> str:
    places = []
    for err in exc.errors()[:5]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.get("loc", ()))
        places.append(f"{field}{where}: {err.get('msg', 'invalid')}".replace("Field required", "missing"))
    return "; ".join(places)


class _Parser:
    def __init__(self, signature, completion: str):
        self.signature, self.completion = signature, completion
        self.fields = signature.output_fields
        self.markers = ", ".join(f"[[ ## {k} ## ]]" for k in self.fields)

    def fail(self, problem: str, cut: bool = False) -> AnswerProblem:
        return AnswerProblem(self.signature, self.completion, problem, cut)

    def cut(self, what: str) -> AnswerProblem:
        return self.fail(f"{what}: the answer was cut off before {COMPLETED}; write every field more briefly, "
                         f"each after its marker ({self.markers}), and end with {COMPLETED}", cut=True)

    def parse(self) -> dict:
        text = strip_thinking(self.completion)
        if text is None:
            raise self.cut("the answer stopped inside its <think> block")
        text = _unfence(text.strip())
        sections, completed = self.sections(text)
        if not sections:
            return self.from_json(text)
        missing = [k for k in self.fields if k not in sections]
        if not completed:
            if missing:
                raise self.cut(f"the answer stops before {', '.join(f'[[ ## {k} ## ]]' for k in missing)}")
            last = list(sections)[-1]
            if not self.complete(last, sections[last]):
                raise self.cut(f"the value of `{last}` stops in the middle")
        if missing:
            raise self.fail(f"the answer has no {', '.join(f'[[ ## {k} ## ]]' for k in missing)}: write each field "
                            f"after its marker ({self.markers}), then {COMPLETED}")
        return {k: self.value(k, sections[k]) for k in self.fields}

    def sections(self, text: str) -> tuple[dict[str, str], bool]:
        """Each output field's text (first occurrence); whether the completion marker came."""
        found: dict[str, list[str]] = {}
        current = None
        for line in text.splitlines():
            head = _HEADER.match(line)
            if head:
                name = head.group(1)
                if name == "completed":
                    return {k: "\n".join(v).strip() for k, v in found.items()}, True
                current = name if name in self.fields and name not in found else None
                if current:
                    found[current] = [head.group(2)] if head.group(2).strip() else []
            elif current:
                found[current].append(line)
        values = {k: "\n".join(v).strip() for k, v in found.items()}
        if values:  # a whole-answer fence opened before the first marker leaves its closing line behind
            last = list(values)[-1]
            lines = values[last].splitlines()
            if lines and lines[-1].strip() == "```" and sum(ln.strip().startswith("```") for ln in lines) % 2:
                values[last] = "\n".join(lines[:-1]).rstrip()
        return values, False

    def complete(self, name: str, raw: str) -> bool:
        """Whether the last value of an answer without its completion marker is whole."""
        raw = _unfence(raw)
        if self.fields[name].annotation is str:
            return bool(_COMPLETE_END.search(raw)) or (bool(raw) and "\n" not in raw and len(raw.split()) <= 3)
        try:
            _load_strict(raw)
        except ValueError:
            return False
        return True

    def value(self, name: str, raw: str):
        raw = _unfence(raw)
        annotation = self.fields[name].annotation
        if annotation is str:
            return raw
        try:
            candidate = _load_strict(raw)
        except ValueError:
            if not _balanced(raw):
                raise self.fail(f"the value of `{name}` stops in the middle (an unclosed string, list or object); "
                                f"write it whole, then {COMPLETED}", cut=True) from None
            if any(c in raw for c in '{}[]"'):
                raise self.fail(f"the value of `{name}` is not valid JSON; write it as JSON, then {COMPLETED}") from None
            return self.typed(name, raw, loaded=False)  # a bare word or number: let the field's type read it
        return self.typed(name, candidate)

    def typed(self, name: str, candidate, loaded: bool = True):
        """`candidate` as the field's type: a loaded JSON value is validated as it is (DSPy's
        parse_value would repair a string again), a bare word is read by parse_value."""
        from dspy.adapters.utils import parse_value

        annotation = self.fields[name].annotation
        try:
            if loaded:
                return _cached_type_adapter(annotation).validate_python(candidate)
            return parse_value(candidate, annotation)
        except pydantic.ValidationError as exc:
            raise self.fail(f"the value of `{name}` does not fit: {_validation_text(name, exc)}") from None
        except (ValueError, TypeError) as exc:
            raise self.fail(f"the value of `{name}` does not fit: {' '.join(str(exc).split())[:200]}") from None

    def from_json(self, text: str) -> dict:
        obj = _json_answer(text)
        if obj is None or not set(obj) & set(self.fields):
            if _looks_cut_json(text):
                raise self.cut("the JSON answer stops in the middle")
            raise self.fail(f"no field markers found: write each field after its marker ({self.markers}), "
                            f"then {COMPLETED}")
        missing = [k for k in self.fields if k not in obj]
        if missing:
            raise self.fail(f"the answer has no {', '.join(missing)}: write each field after its marker "
                            f"({self.markers}), then {COMPLETED}")
        return {k: obj[k] if self.fields[k].annotation is str and isinstance(obj[k], str) else self.typed(k, obj[k])
                for k in self.fields}
