"""The judges: verdict parsing and checking, retries with feedback, failures.

`judge_checklist` runs `ChecklistJudge` once per (sample, run): every item of the sample (its
ipe and mpd items) in one structured call. The answer must hold exactly one verdict per item,
scores in {-1, 0, 1}; a malformed answer is retried with the problems as feedback, up to
`max_attempts`, then recorded as a failure (never silently dropped or patched with zeros).
`judge_holistic` does the same for `HolisticJudge` (two integers in 0-100).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from ..compiler.programs import coerce_item, coerce_score
from ..runtime.errors import call_failed, describe

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)
_SECTION = re.compile(r"\[\[\s*##\s*(\w+)\s*##\s*\]\]\s*(.*?)(?=\[\[\s*##|\Z)", re.S)


class VerdictError(ValueError):
    """An answer that is not one valid verdict per item; the message says what is wrong."""


# ---- parsing -----------------------------------------------------------------------------
def _loads(text: str):
    """JSON from an LM's text: plain, in a code fence, or the first [...] / {...} span in prose."""
    text = text.strip()
    fenced = _FENCE.search(text)
    candidates = [fenced.group(1)] if fenced else []
    candidates.append(text)
    for open_, close in (("[", "]"), ("{", "}")):
        lo, hi = text.find(open_), text.rfind(close)
        if 0 <= lo < hi:
            candidates.append(text[lo:hi + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError:
            continue
    raise VerdictError("the verdicts are not valid JSON")


def section(text: str, field: str) -> str | None:
    """The `[[ ## field ## ]]` section of a ChatAdapter-style answer, if any.

    Args:
        text: the raw LM answer.
        field: the output field's name.
    """
    for name, body in _SECTION.findall(text or ""):
        if name == field:
            return body.strip()
    return None


def _entries(raw) -> list:
    """The list of verdict entries in any of the accepted shapes."""
    if hasattr(raw, "model_dump"):
        raw = raw.model_dump()
    if isinstance(raw, str):
        body = section(raw, "verdicts")
        raw = _loads(body if body is not None else raw)
    if isinstance(raw, dict):
        if "verdicts" in raw:
            return _entries(raw["verdicts"])
        if raw and all(_is_item_key(k) for k in raw):  # {"1": 1, "2": {"score": 0, ...}}
            return [{"item": k, **v} if isinstance(v, dict) else {"item": k, "score": v} for k, v in raw.items()]
        raise VerdictError("expected a list of verdicts, found an object without `verdicts`")
    if not isinstance(raw, list | tuple):
        raise VerdictError(f"expected a list of verdicts, found {type(raw).__name__}")
    return [e.model_dump() if hasattr(e, "model_dump") else e for e in raw]


def _is_item_key(key) -> bool:
    try:
        coerce_item(key)
        return True
    except ValueError:
        return False


def normalise_verdicts(raw, n_items: int) -> list[dict]:
    """Check and normalise a judge's verdicts for `n_items` items.

    Accepted shapes: a list of `Verdict`s or dicts; a JSON string (bare, in a code fence, or the
    `[[ ## verdicts ## ]]` section of a raw answer); `{"verdicts": [...]}`; `{"1": 1, "2": -1}`.
    Scores may be -1/0/1 as numbers or strings ("+1") or the words of the instructions
    ("satisfied", "not exhibited", "violated"). Entries without item numbers are taken in order,
    if there are exactly `n_items` of them.

    Args:
        raw: the answer.
        n_items: how many items were asked.
    Returns:
        `[{"item": 1, "score": s, "evidence": str}, ...]` for items 1..n_items in order.
    Raises:
        VerdictError: a missing, repeated (with different scores), unknown or unscorable item,
        naming what is wrong.
    """
    entries = _entries(raw)
    numbered = [e for e in entries if isinstance(e, dict) and e.get("item") is not None]
    if not numbered and len(entries) == n_items:  # bare scores or unnumbered dicts, in order
        entries = [{**e, "item": i} if isinstance(e, dict) else {"item": i, "score": e}
                   for i, e in enumerate(entries, 1)]
    found: dict[int, dict] = {}
    problems = []
    for pos, e in enumerate(entries, 1):
        if not isinstance(e, dict):
            problems.append(f"entry {pos} is not an object")
            continue
        try:
            item = coerce_item(e.get("item"))
        except ValueError as exc:
            problems.append(f"entry {pos}: {exc}")
            continue
        if item > n_items:
            problems.append(f"item {item} does not exist (there are {n_items} items)")
            continue
        if "score" not in e:
            problems.append(f"item {item} has no score")
            continue
        try:
            score = coerce_score(e["score"])
        except ValueError as exc:
            problems.append(f"item {item}: {exc}")
            continue
        evidence = "" if e.get("evidence") is None else " ".join(str(e["evidence"]).split())
        if item in found and found[item]["score"] != score:
            problems.append(f"item {item} is given two different scores")
            continue
        found.setdefault(item, {"item": item, "score": score, "evidence": evidence})
    missing = [i for i in range(1, n_items + 1) if i not in found]
    if missing:
        problems.append(f"no verdict for item{'s' * (len(missing) > 1)} {', '.join(map(str, missing))}")
    if problems:
        raise VerdictError("; ".join(problems))
    return [found[i] for i in range(1, n_items + 1)]


def coerce_rating(value, field: str) -> int:
    """A holistic rating as an integer in 0-100, from 85, 85.0, "85", "85/100" or "85 %".

    Args:
        value: the LM's value.
        field: the field's name, for the message.
    """
    if isinstance(value, bool):
        raise VerdictError(f"{field} must be an integer from 0 to 100, not {value!r}")
    if isinstance(value, str):
        found = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*100|%|percent)?\s*\.?\s*", value)
        if not found:
            raise VerdictError(f"{field} must be an integer from 0 to 100, not {value!r}")
        value = float(found.group(1))
    if not isinstance(value, int | float) or not 0 <= value <= 100:
        raise VerdictError(f"{field} must be an integer from 0 to 100, not {value!r}")
    return int(round(value))


# ---- running with retries ----------------------------------------------------------------
CALL_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, TypeError, RuntimeError)


def call_errors() -> tuple[type[BaseException], ...]:
    """The exceptions an LM call or an adapter may raise for one bad answer (not programming errors)."""
    from dspy.utils.exceptions import DSPyError

    return (*CALL_ERRORS, DSPyError)


def _raw_answer(exc: BaseException) -> str | None:
    return getattr(exc, "lm_response", None)


def attempt(call: Callable[[str, dict], object], check: Callable[[object], dict], rescue: Callable[[str], dict] | None,
            base_id: str, max_attempts: int) -> dict:
    """Call, check, retry with feedback; the shared retry loop of both judges.

    Args:
        call: `(feedback, config) -> prediction`.
        check: `prediction -> result fields`; raises VerdictError when malformed.
        rescue: `raw LM text -> result fields` for an answer the adapter could not parse (or None).
        base_id: the rollout id prefix; attempt k uses `<base_id>/attempt<k>`, so a retry is a new sample.
        max_attempts: tries before the failure is recorded.
    Returns:
        `{"status": "ok", "attempts": k, **fields}` or `{"status": "failed", "attempts": k, "reason": ...}`.

    Transport faults (rate limits, server errors, timeouts, replies without an answer) are resent
    below this loop by the run's call policy; one that outlasts those resends fails the verdict
    set at once, with no feedback: it says nothing about the answer (a re-run tries it again).
    """
    from ..runtime.calls import is_transient

    feedback, reason = "", ""
    errors = call_errors()
    for k in range(1, max_attempts + 1):
        try:
            out = call(feedback, {"rollout_id": f"{base_id}/attempt{k}"})
            return {"status": "ok", "attempts": k, **check(out)}
        except VerdictError as exc:
            reason = str(exc)
        except errors as exc:
            if is_transient(exc):
                return {"status": "failed", "attempts": k, "transport": True,
                        "reason": call_failed(exc)}
            raw = _raw_answer(exc)
            if rescue is not None and raw:
                try:
                    return {"status": "ok", "attempts": k, **rescue(raw)}
                except VerdictError as inner:
                    reason = f"the answer could not be parsed: {inner}"
            else:
                reason = describe(exc)
        feedback = f"Your previous answer was rejected: {reason}. Answer again, following the format exactly."
    return {"status": "failed", "attempts": max_attempts, "reason": reason}


def judge_checklist(program, character: str, transcript: str, items: list[str], *, base_id: str,
                    max_attempts: int = 3) -> dict:
    """Judge every item for one character in one call (retried when malformed).

    Args:
        program: a `ChecklistJudge` (or an optimised one loaded with `load_program`).
        character: the judged character.
        transcript: the judge's view of the conversation (`rollout.transcript`).
        items: the checklist item texts, numbered from 1 in this order.
        base_id: the rollout id prefix of this (sample, run).
        max_attempts: tries before the failure is recorded.
    Returns:
        `{"status": "ok", "attempts", "verdicts": [{item, score, evidence}]}` or a failure.
    """
    n = len(items)

    def call(feedback, config):
        return program(character=character, transcript=transcript, items=list(items), feedback=feedback, config=config)

    return attempt(call, lambda out: {"verdicts": normalise_verdicts(out.verdicts, n)},
                   lambda raw: {"verdicts": normalise_verdicts(raw, n)}, base_id, max_attempts)


def judge_holistic(program, character: str, profile: str, transcript: str, *, base_id: str,
                   max_attempts: int = 3) -> dict:
    """Rate one character's performance holistically (retried when malformed).

    Args:
        program: a `HolisticJudge`.
        character: the rated character.
        profile: the character's profile (about self, about others).
        transcript: the judge's view of the conversation.
        base_id: the rollout id prefix of this (sample, run).
        max_attempts: tries before the failure is recorded.
    Returns:
        `{"status": "ok", "attempts", "anthropomorphism", "fidelity", "rationale"}` or a failure.
    """
    def call(feedback, config):
        return program(character=character, profile=profile, transcript=transcript, feedback=feedback, config=config)

    def ratings(anthropomorphism, fidelity, rationale) -> dict:
        return {"anthropomorphism": coerce_rating(anthropomorphism, "anthropomorphism"),
                "fidelity": coerce_rating(fidelity, "fidelity"), "rationale": str(rationale or "")}

    def rescue(raw: str) -> dict:
        fields = {name: section(raw, name) for name in ("anthropomorphism", "fidelity", "rationale")}
        if fields["anthropomorphism"] is None or fields["fidelity"] is None:
            raise VerdictError("the answer lacks anthropomorphism or fidelity")
        return ratings(**fields)

    return attempt(call, lambda out: ratings(out.anthropomorphism, out.fidelity, out.rationale), rescue,
                   base_id, max_attempts)


def profile_text(record: dict, character: str) -> str:
    """A character's profile for the holistic judge.

    Args:
        record: the scenario record.
        character: the character's name.
    """
    c = next(c for c in record["characters"] if c["name"] == character)
    others = "\n".join(f"- {k}: {v}" for k, v in c.get("about_others", {}).items())
    return f"{c['about_self']}\nHow {character} sees the others:\n{others}\nThe scene: {record.get('background', '')}"


def evidence_grounded(verdicts: list[dict], transcript: str) -> tuple[int, int]:
    """How many non-zero verdicts quote evidence found word for word in the transcript.

    Args:
        verdicts: normalised verdicts.
        transcript: the transcript the judge saw.
    Returns:
        `(grounded, non_zero)`.
    """
    text = " ".join(transcript.lower().split())
    scored = [v for v in verdicts if v["score"] != 0]
    grounded = sum(bool(v["evidence"]) and " ".join(v["evidence"].lower().strip("\"'“”").split()) in text for v in scored)
    return grounded, len(scored)
