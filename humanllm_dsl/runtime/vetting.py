"""Bundle vetting at plan time: the method's contradiction screen as a DSPy program
(`programs.BundleVetting`). Verdicts are cached by pattern set; verdicts recorded in an earlier
`plan.jsonl` are reused, so a re-run asks the LM nothing and plans the same slots."""

from __future__ import annotations

import json
from pathlib import Path

from ..compiler import model as m
from ..compiler.plan import Verdict, Vet


def recorded_verdicts(plan_path: Path) -> dict[frozenset, Verdict]:
    """The verdicts an earlier plan.jsonl holds (its `vetting` rows), by pattern set."""
    found: dict[frozenset, Verdict] = {}
    if not plan_path.exists():
        return found
    for number, line in enumerate(plan_path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{plan_path}:{number}: not a JSON line ({exc.msg})") from None
        for v in row.get("vetting") or ():
            found[frozenset(v["patterns"])] = Verdict(tuple(v["patterns"]), v["verdict"] == "keep", v["reason"])
    return found


def verdict_json(v: Verdict) -> dict:
    return {"patterns": list(v.patterns), "verdict": "keep" if v.keep else "veto", "reason": v.reason}


def make_vetter(lib: m.Library, lm, recorded: dict[frozenset, Verdict] | None = None) -> Vet:
    """A `vet` callable for `make_plan` that asks `lm` through BundleVetting, each set once."""
    import dspy

    from ..compiler.programs import BundleVetting, pattern_brief

    program = BundleVetting()
    cache = dict(recorded or {})
    by_pattern: dict[str, list[m.Interaction]] = {}
    for it in lib.interactions:
        by_pattern.setdefault(it.patterns[0], []).append(it)

    def vet(patterns: tuple[str, ...]) -> Verdict:
        key = frozenset(patterns)
        if key not in cache:
            chosen = set(patterns)
            declared = [{"patterns": list(it.patterns), "type": it.type, "because": it.because}
                        for p in patterns for it in by_pattern.get(p, ()) if chosen.issuperset(it.patterns)]
            with dspy.context(lm=lm):
                out = program(patterns=json.dumps([pattern_brief(lib.pattern(p)) for p in patterns], ensure_ascii=False),
                              interactions=json.dumps(declared, ensure_ascii=False))
            cache[key] = Verdict(tuple(patterns), str(out.verdict).strip().lower() == "keep", str(out.reason).strip())
        return cache[key]

    return vet
