"""The syntax tree of a `.hpat` file.

Every node is a small frozen attrs class. `span` says where the node came from; it is excluded
from equality so that a tree parsed back from formatted text compares equal to the original.
Fields of blocks keep their source order (the formatter never reorders).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Union

import attrs

from .span import Span


def _span():
    return attrs.field(default=None, eq=False, repr=False, kw_only=True)


def _flag():
    """`override` of a declaration, `std` of a `use`: off unless written."""
    return attrs.field(default=False, kw_only=True)


@attrs.frozen
class Name:
    value: str
    span: Span | None = _span()


@attrs.frozen
class Str:
    value: str
    span: Span | None = _span()


@attrs.frozen
class Comment:
    text: str  # including the leading '#'
    span: Span | None = _span()


@attrs.frozen
class Use:
    """`use "file.hpat"`, or `use std "traits/extraversion"` (a file of the standard library)."""

    path: Str
    std: bool = _flag()
    span: Span | None = _span()


# ---- pattern fields ---------------------------------------------------------------------
@attrs.frozen
class Family:
    value: Name
    span: Span | None = _span()


@attrs.frozen
class Dimension:
    value: Name
    span: Span | None = _span()


@attrs.frozen
class Pole:
    value: Name
    span: Span | None = _span()


@attrs.frozen
class Definition:
    text: Str
    span: Span | None = _span()


@attrs.frozen
class Mechanism:
    kind: Name
    text: Str
    span: Span | None = _span()


@attrs.frozen
class Manifestation:
    text: Str
    span: Span | None = _span()


@attrs.frozen
class Checklist:
    items: tuple[Str, ...]
    span: Span | None = _span()


@attrs.frozen
class Source:
    authors: Str
    year: int
    title: Str
    venue: Str
    span: Span | None = _span()


@attrs.frozen
class Tags:
    values: tuple[Str, ...]
    span: Span | None = _span()


PatternField = Union[Family, Dimension, Pole, Definition, Mechanism, Manifestation, Checklist, Source, Tags]


@attrs.frozen
class Pattern:
    id: Name
    name: Str
    fields: tuple[PatternField, ...]
    override: bool = _flag()
    span: Span | None = _span()


# ---- interactions ----------------------------------------------------------------------
@attrs.frozen
class Because:
    text: Str
    span: Span | None = _span()


@attrs.frozen
class Expect:
    text: Str
    span: Span | None = _span()


@attrs.frozen
class Interaction:
    """`interaction a, b: type {...}`, or directed `interaction a -> b: modulate {...}`.

    For a directed interaction `patterns` are the sources and `targets` the patterns they shape;
    `targets` is None for an undirected one.
    """

    patterns: tuple[Name, ...]
    targets: tuple[Name, ...] | None
    type: Name
    because: Because | None = None
    expect: Expect | None = None
    span: Span | None = _span()


@attrs.frozen
class Exclusion:
    patterns: tuple[Name, ...]
    because: Because | None = None
    has_body: bool = attrs.field(default=False, eq=False)
    span: Span | None = _span()


# ---- situations and domains ------------------------------------------------------------
@attrs.frozen
class Describe:
    text: Str
    span: Span | None = _span()


@attrs.frozen
class Situation:
    id: Name
    name: Str
    describe: Describe | None = None
    override: bool = _flag()
    span: Span | None = _span()


@attrs.frozen
class Domain:
    id: Name
    name: Str
    describe: Describe | None = None
    override: bool = _flag()
    span: Span | None = _span()


# ---- datasets --------------------------------------------------------------------------
@attrs.frozen
class Default:
    span: Span | None = _span()


@attrs.frozen
class Scenarios:
    count: int
    span: Span | None = _span()


@attrs.frozen
class Range:
    kind: str  # patterns | characters | turns
    low: int
    high: int
    span: Span | None = _span()


@attrs.frozen
class Seed:
    value: int
    span: Span | None = _span()


@attrs.frozen
class Include:
    """`include patterns|situations|domains all` or a list of names (`names` None means all)."""

    kind: str
    names: tuple[Name, ...] | None
    span: Span | None = _span()


@attrs.frozen
class Quota:
    family: Name
    count: int
    span: Span | None = _span()


@attrs.frozen
class HoldOut:
    count: int
    quotas: tuple[Quota, ...] | None = None
    span: Span | None = _span()


@attrs.frozen
class EvalSize:
    kind: str  # id_eval | ood_eval | mixed_eval
    count: int
    span: Span | None = _span()


@attrs.frozen
class Split:
    fields: tuple[Union[HoldOut, EvalSize], ...]
    span: Span | None = _span()


@attrs.frozen
class Percent:
    """`60%`; the number as written (a Decimal, so it prints back unchanged)."""

    value: Decimal
    span: Span | None = _span()


@attrs.frozen
class BundleRule:
    """`trait 3..4, positive 60%` or `social_cognitive 1 in 70% of scenarios`: how many patterns of a
    family a bundle takes (`low`..`high`), the share of positive-pole traits, and in what share of
    scenarios the family appears at all (None: every scenario)."""

    family: Name
    low: int
    high: int
    positive: Percent | None = None
    share: Percent | None = None
    span: Span | None = _span()


@attrs.frozen
class Bundle:
    rules: tuple[BundleRule, ...]
    span: Span | None = _span()


@attrs.frozen
class CastWeight:
    size: int
    weight: Percent
    span: Span | None = _span()


@attrs.frozen
class Cast:
    """`cast 2: 30%, 3: 45%, ...`: how many characters a scenario has, and how often."""

    weights: tuple[CastWeight, ...]
    span: Span | None = _span()


DatasetField = Union[Default, Describe, Scenarios, Range, Seed, Include, Split, Bundle, Cast]


@attrs.frozen
class Dataset:
    id: Name
    fields: tuple[DatasetField, ...]
    override: bool = _flag()
    span: Span | None = _span()


Item = Union[Use, Pattern, Interaction, Exclusion, Situation, Domain, Dataset]


@attrs.frozen
class Module:
    """One parsed file."""

    file: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...] = attrs.field(default=(), eq=False)
