"""Small synthetic libraries as .hpat text, for tests of the later stages."""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path

DIMS = ("extraversion", "agreeableness", "conscientiousness", "emotional_stability", "openness")


def pattern_text(pid: str, trait_dim: str | None = None, pole: str = "positive", items: int = 12,
                 mechanism_names_id: bool = True) -> str:
    """A pattern; its mechanism names its id unless told otherwise (the offline engine never voices
    a mechanism that names a pattern of its request)."""
    family = f"family trait\n  dimension {trait_dim}\n  pole {pole}" if trait_dim else "family social_cognitive"
    checklist = "\n".join(f'    "Does the character show behaviour {k} typical of {pid.replace("_", " ")} marker?"'
                          for k in range(items))
    return f'''pattern {pid} "{pid.replace("_", " ")} name" {{
  {family}
  definition "A test pattern called {pid}."
  mechanism cognitive "{f"Cognitive reason for {pid}" if mechanism_names_id else f"Cognitive reason number {zlib.crc32(pid.encode())}"}."
  manifestation "At work, {pid} shows in planning."
  manifestation "At home, {pid} shows in chores."
  manifestation "With friends, {pid} shows in talk."
  checklist {{
{checklist}
  }}
  source "Doe, J." (2000) "On {pid}" in "Journal of Tests"
  source "Roe, R." (2001) "More on {pid}" in "Journal of Tests"
}}
'''


def library_text(n_social: int = 12, traits_per_pole: int = 2, scenarios: int = 40, seed: int = 7,
                 hold_social: int = 2, hold_trait: int = 2, id_eval: int = 4, ood_eval: int = 3, mixed_eval: int = 0,
                 interactions: int = 20, rng_seed: int = 0, turns: str = "12..20", characters: str = "2..4",
                 mechanism_names_id: bool = True) -> str:
    rng = random.Random(rng_seed)
    parts, social, traits = [], [], []
    for i in range(n_social):
        social.append(f"sc{i}")
        parts.append(pattern_text(f"sc{i}", mechanism_names_id=mechanism_names_id))
    for dim in DIMS:
        for pole in ("positive", "negative"):
            for k in range(traits_per_pole):
                pid = f"{dim[:4]}_{pole[:3]}{k}"
                traits.append((pid, dim))
                parts.append(pattern_text(pid, dim, pole, mechanism_names_id=mechanism_names_id))
    ids = social + [t for t, _ in traits]
    dim_of = dict(traits)
    seen = set()
    types = ("reinforce", "conflict", "modulate")
    for k in range(interactions):
        a, b = rng.sample(ids, 2)
        if frozenset((a, b)) in seen or (a in dim_of and b in dim_of and dim_of[a] == dim_of[b]):
            continue
        seen.add(frozenset((a, b)))
        kind = types[k % 3]
        head = f"{a} -> {b}" if kind == "modulate" else f"{a}, {b}"
        parts.append(f'interaction {head}: {kind} {{\n  because "Reason {k}."\n  expect "Joint behaviour {k}."\n}}\n')
    parts.append('situation duty "Duty"\nsituation sociality "Sociality"\nsituation adversity "Adversity"\n')
    parts.append('domain home "Home & Private Life"\ndomain health "Health & Well-being"\n')
    parts.append(f'''dataset tiny {{
  default
  scenarios {scenarios}
  patterns 2..4
  characters {characters}
  turns {turns}
  seed {seed}
  split {{
    hold_out {hold_social + hold_trait} {{
      social_cognitive {hold_social}
      trait {hold_trait}
    }}
    id_eval {id_eval}
    ood_eval {ood_eval}
{f"    mixed_eval {mixed_eval}" if mixed_eval else ""}
  }}
}}
''')
    return "\n".join(parts)


def write_library(folder: Path, scenarios: int, **kw) -> Path:
    """`folder` holding one library file, `library_text(scenarios=scenarios, **kw)`."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "lib.hpat").write_text(library_text(scenarios=scenarios, **kw), encoding="utf-8")
    return folder


def read_jsonl(path: Path) -> list[dict]:
    """The rows of a JSON-lines file (none if it does not exist)."""
    text = path.read_text("utf-8") if path.exists() else ""
    return [json.loads(line) for line in text.splitlines()]


def outputs(folder: Path, skip=("work", "cache")) -> dict[str, bytes]:
    """Every file of a build folder by relative path, but the resume state (what must be equal
    between two runs that should give the same dataset)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).parts[0] not in skip}
