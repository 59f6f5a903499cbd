"""The checked spec: plain frozen records that later stages read (no syntax, no spans but a
`where` for messages). `converter` turns them to and from JSON-ready data."""

from __future__ import annotations

import hashlib
import json

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

FAMILIES = ("social_cognitive", "trait")
DIMENSIONS = ("extraversion", "agreeableness", "conscientiousness", "emotional_stability", "openness")
POLES = ("positive", "negative")
INTERACTION_TYPES = ("reinforce", "conflict", "modulate")
MECHANISM_KINDS = {
    "social_cognitive": ("cognitive", "emotional", "evolutionary", "motivational", "social"),
    "trait": ("cognitive", "emotional", "behavioral"),
}
SPLITS = ("train", "id_eval", "ood_eval", "mixed_eval")
TRAIN_SPLIT, EVAL_SPLITS = SPLITS[0], SPLITS[1:]


@attrs.frozen
class Source:
    authors: str
    year: int
    title: str
    venue: str

    @property
    def citation(self) -> str:
        return f"{self.authors} ({self.year}). {self.title}. {self.venue}."


@attrs.frozen
class Mechanism:
    kind: str
    text: str


@attrs.frozen
class Pattern:
    id: str
    name: str
    family: str
    dimension: str | None
    pole: str | None
    definition: str
    mechanisms: tuple[Mechanism, ...]
    manifestations: tuple[str, ...]
    checklist: tuple[str, ...]
    sources: tuple[Source, ...]
    tags: tuple[str, ...] = ()
    where: str = attrs.field(default="", eq=False)  # file:line:col

    @property
    def is_trait(self) -> bool:
        return self.family == "trait"

    @property
    def group(self) -> tuple[str, str | None]:
        """What a bundle rule counts and balances within: the family, and for a trait its pole."""
        return self.family, self.pole


@attrs.frozen
class Direction:
    """For `modulate`: the patterns in `sources` shape how the patterns in `targets` show."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]


@attrs.frozen
class Interaction:
    patterns: tuple[str, ...]
    type: str
    direction: Direction | None = None
    because: str = ""
    expect: str = ""
    where: str = attrs.field(default="", eq=False)


@attrs.frozen
class Exclusion:
    patterns: tuple[str, ...]
    because: str = ""
    where: str = attrs.field(default="", eq=False)


@attrs.frozen
class Situation:
    id: str
    name: str
    description: str = ""


@attrs.frozen
class Domain:
    id: str
    name: str
    description: str = ""


@attrs.frozen
class HoldOut:
    """How many patterns to hold out, and how many of each family (`quotas`, may be empty).
    Held-out traits always come from different Big Five dimensions."""

    count: int = 0
    quotas: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class FamilyRule:
    """How a bundle takes patterns of one family: `low`..`high` of them (uniformly), in `share` of
    the scenarios (0..1); for traits, `positive` is the chance that a marker comes from the positive
    pole (None: poles as coverage makes them). Traits always come from different Big Five dimensions."""

    family: str
    low: int
    high: int
    positive: float | None = None
    share: float = 1.0


@attrs.frozen
class CastSize:
    """Scenarios with `size` characters have weight `weight` (a share, 0..1)."""

    size: int
    weight: float


@attrs.frozen
class Dataset:
    id: str
    scenarios: int
    patterns: tuple[int, int] = (2, 5)
    characters: tuple[int, int] = (2, 6)
    turns: tuple[int, int] = (12, 20)
    seed: int = 0
    default: bool = False
    description: str = ""
    include_patterns: tuple[str, ...] | None = None  # None: all
    include_situations: tuple[str, ...] | None = None
    include_domains: tuple[str, ...] | None = None
    hold_out: HoldOut = attrs.field(factory=HoldOut)
    id_eval: int = 0
    ood_eval: int = 0
    mixed_eval: int = 0  # at least this many scenarios mix held-out and in-domain patterns
    bundle: tuple[FamilyRule, ...] = ()  # empty: any mix of families, balanced over all patterns
    cast: tuple[CastSize, ...] = ()  # empty: every size in `characters` equally often
    where: str = attrs.field(default="", eq=False)


def bundle_sizes(rules: tuple[FamilyRule, ...]) -> tuple[int, int]:
    """The fewest and most patterns a bundle drawn by `rules` can hold."""
    low = sum(r.low for r in rules if r.share >= 1)
    return low, sum(r.high for r in rules)


@attrs.frozen
class Library:
    """Everything the specs declare, checked."""

    patterns: tuple[Pattern, ...]
    interactions: tuple[Interaction, ...]
    exclusions: tuple[Exclusion, ...]
    situations: tuple[Situation, ...]
    domains: tuple[Domain, ...]
    datasets: tuple[Dataset, ...]

    def pattern(self, pattern_id: str) -> Pattern:
        return self.by_id[pattern_id]

    @property
    def by_id(self) -> dict[str, Pattern]:
        return {p.id: p for p in self.patterns}

    def dataset(self, name: str | None = None) -> Dataset:
        """The named dataset, or the one marked `default` (or the only one)."""
        if name is not None:
            for d in self.datasets:
                if d.id == name:
                    return d
            known = ", ".join(d.id for d in self.datasets) or "none"
            raise KeyError(f"no dataset named `{name}` (known: {known})")
        marked = [d for d in self.datasets if d.default]
        if marked:
            return marked[0]
        if len(self.datasets) == 1:
            return self.datasets[0]
        raise KeyError("no dataset is marked `default`; name one with --dataset")

    @property
    def spec_hash(self) -> str:
        """sha256 of the library's content (formatting and file layout do not change it)."""
        data = json.dumps(to_json(self), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(data.encode("utf-8")).hexdigest()


converter = cattrs.Converter()
converter.register_unstructure_hook(
    Direction, make_dict_unstructure_fn(Direction, converter, sources=override(rename="from"),
                                        targets=override(rename="to")))
converter.register_structure_hook(
    Direction, make_dict_structure_fn(Direction, converter, sources=override(rename="from"),
                                      targets=override(rename="to")))
for _cls in (Pattern, Interaction, Exclusion, Dataset):
    converter.register_unstructure_hook(
        _cls, make_dict_unstructure_fn(_cls, converter, where=override(omit=True)))


def to_json(library: Library) -> dict:
    """The documented JSON shape of `humanllm dump --json` (see docs/language.md)."""
    return converter.unstructure(library)


def from_json(data: dict) -> Library:
    """The inverse of `to_json` (source positions are not kept)."""
    return converter.structure(data, Library)
