"""Semantic checks: syntax trees of all files -> a checked Library, plus every diagnostic."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

import attrs

from ..syntax import ast
from ..syntax.diagnostics import Diagnostic, plural, suggestion
from ..syntax.span import Span
from . import model as m
from .satisfy import LIMITS

CHECKLIST_RANGE = (12, 15)
MIN_MANIFESTATIONS = 3
MIN_SOURCES = 2
MIN_CHARACTERS = 2
MIN_TURNS = 2
STD_PREFIX = "std:"  # how messages name a file of the standard library: std:traits/openness.hpat


def where(span: Span | None) -> str:
    return str(span) if span is not None else ""


def in_stdlib(node) -> bool:
    return node.span is not None and node.span.file.startswith(STD_PREFIX)


class Checker:
    def __init__(self, modules: Iterable[ast.Module]):
        self.modules = list(modules)
        self.diagnostics: list[Diagnostic] = []
        self.item_keys: dict[str, list[str]] = {}  # pattern id -> its checklist items, normalised
        self.item_spans: dict[str, list[Span | None]] = {}  # pattern id -> where its items are

    # -- reporting
    def error(self, span, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.at(span, message, hint=hint))

    def warning(self, span, message: str, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic.at(span, message, severity="warning", hint=hint))

    def _items(self, kind):
        for module in self.modules:
            for item in module.items:
                if isinstance(item, kind):
                    yield item

    def _unique(self, kind, label: str) -> dict[str, object]:
        """Declarations by id. A user's declaration marked `override` replaces the standard
        library's of the same id; any other collision is an error naming both places."""
        seen: dict[str, object] = {}
        for item in self._items(kind):
            key = item.id.value
            first = seen.get(key)
            if first is None:
                seen[key] = item
            elif in_stdlib(first) and not in_stdlib(item) and item.override:
                seen[key] = item
            elif in_stdlib(first) and not in_stdlib(item):
                self.error(item.id.span, f"{label} `{key}` is already defined in the standard library, at "
                                         f"{where(first.id.span)}",
                           f"give yours another id, or write `override {label} {key} ...` to replace the library's")
            else:
                self.error(item.id.span, f"duplicate {label} `{key}`",
                           f"it is already defined at {where(first.span)}; give one of them another id")
        for item in self._items(kind):
            if item.override and seen.get(item.id.value) is item and not in_stdlib(item) \
                    and not self._std_has(kind, item.id.value):
                self.warning(item.span, f"`override {label} {item.id.value}` replaces nothing: the standard library "
                                        f"has no {label} `{item.id.value}`", "remove `override`")
        return seen

    def _std_has(self, kind, key: str) -> bool:
        return any(in_stdlib(x) and x.id.value == key for x in self._items(kind))

    # -- the run
    def check(self) -> m.Library:
        patterns = [self.pattern(p) for p in self._unique(ast.Pattern, "pattern").values()]
        ids = {p.id: p for p in patterns}
        exclusions = [e for e in (self.exclusion(x, ids) for x in self._items(ast.Exclusion)) if e]
        interactions = self.interactions(ids, exclusions)
        situations = [m.Situation(s.id.value, s.name.value, s.describe.text.value if s.describe else "")
                      for s in self._unique(ast.Situation, "situation").values()]
        domains = [m.Domain(d.id.value, d.name.value, d.describe.text.value if d.describe else "")
                   for d in self._unique(ast.Domain, "domain").values()]
        library = m.Library(tuple(patterns), tuple(interactions), tuple(exclusions),
                            tuple(situations), tuple(domains), ())
        datasets = [d for d in (self.dataset(x, library) for x in self._unique(ast.Dataset, "dataset").values()) if d]
        if any(d.default and not d.where.startswith(STD_PREFIX) for d in datasets):  # the user's default wins
            datasets = [attrs.evolve(d, default=False) if d.where.startswith(STD_PREFIX) else d for d in datasets]
        defaults = [d for d in datasets if d.default]
        for extra in defaults[1:]:
            self.error_at(extra.where, f"more than one dataset is marked `default` (`{defaults[0].id}` and `{extra.id}`)",
                          "keep `default` in one dataset")
        self.library_warnings(patterns)
        return attrs.evolve(library, datasets=tuple(datasets))

    def error_at(self, where_: str, message: str, hint: str | None = None) -> None:
        file, line, column = where_.rsplit(":", 2)
        self.diagnostics.append(Diagnostic(file, int(line), int(column), message, "error", hint))

    # -- patterns
    def _single(self, fields, kind, what: str, pattern_id: str):
        found = [f for f in fields if isinstance(f, kind)]
        for extra in found[1:]:
            self.error(extra.span, f"pattern `{pattern_id}` has more than one `{what}`",
                       f"the first is at {where(found[0].span)}; keep one")
        return found[0] if found else None

    def pattern(self, node: ast.Pattern) -> m.Pattern:
        pid, fields = node.id.value, node.fields
        family = self._single(fields, ast.Family, "family", pid)
        dimension = self._single(fields, ast.Dimension, "dimension", pid)
        pole = self._single(fields, ast.Pole, "pole", pid)
        definition = self._single(fields, ast.Definition, "definition", pid)
        fam = family.value.value if family else None
        if family is None:
            self.error(node.id.span, f"pattern `{pid}` has no `family`",
                       "add `family social_cognitive` or `family trait`")
        elif fam not in m.FAMILIES:
            self.error(family.value.span, f"unknown family `{fam}`{suggestion(fam, m.FAMILIES)}",
                       "a family is `social_cognitive` or `trait`")
            fam = None
        dim = dimension.value.value if dimension else None
        pol = pole.value.value if pole else None
        if fam == "trait":
            if dimension is None:
                self.error(node.id.span, f"trait `{pid}` has no `dimension`",
                           "add one of: " + ", ".join(m.DIMENSIONS))
            elif dim not in m.DIMENSIONS:
                self.error(dimension.value.span, f"unknown Big Five dimension `{dim}`{suggestion(dim, m.DIMENSIONS)}",
                           "a dimension is one of: " + ", ".join(m.DIMENSIONS))
            if pole is None:
                self.error(node.id.span, f"trait `{pid}` has no `pole`", "add `pole positive` or `pole negative`")
            elif pol not in m.POLES:
                self.error(pole.value.span, f"unknown pole `{pol}`{suggestion(pol, m.POLES)}",
                           "a pole is `positive` or `negative`")
        elif fam == "social_cognitive":
            for f in (dimension, pole):
                if f is not None:
                    self.error(f.span, f"`{type(f).__name__.lower()}` is only for traits; `{pid}` is social_cognitive",
                               "remove it, or change the family to `trait`")
            dim = pol = None
        if definition is None:
            self.error(node.id.span, f"pattern `{pid}` has no `definition`", 'add `definition """..."""`')
        mechanisms = []
        kinds = m.MECHANISM_KINDS.get(fam or "", sorted({k for ks in m.MECHANISM_KINDS.values() for k in ks}))
        for f in fields:
            if isinstance(f, ast.Mechanism):
                if f.kind.value not in kinds:
                    self.error(f.kind.span, f"unknown mechanism kind `{f.kind.value}`{suggestion(f.kind.value, kinds)}",
                               "for this family a mechanism is one of: " + ", ".join(kinds))
                mechanisms.append(m.Mechanism(f.kind.value, f.text.value))
        checklist = [item for f in fields if isinstance(f, ast.Checklist) for item in f.items]
        seen: dict[str, ast.Str] = {}
        keys = self.item_keys[pid] = [_norm(item.value) for item in checklist]
        self.item_spans[pid] = [item.span for item in checklist]
        for item, key in zip(checklist, keys):
            if not key:
                self.error(item.span, "empty checklist item", "write the question or remove the line")
            elif key in seen:
                self.error(item.span, f"checklist item repeated in `{pid}`", f"the same item is at {where(seen[key].span)}")
            else:
                seen[key] = item
        if not checklist:
            self.error(node.id.span, f"pattern `{pid}` has no checklist items",
                       "add `checklist { \"Does the character ...?\" }` (the method uses 12-15 items)")
        elif not CHECKLIST_RANGE[0] <= len(checklist) <= CHECKLIST_RANGE[1]:
            self.warning(node.id.span, f"pattern `{pid}` has {plural(len(checklist), 'checklist item')}",
                         f"the method uses {CHECKLIST_RANGE[0]}-{CHECKLIST_RANGE[1]} items per pattern")
        name_words = _name_words(node.name.value)
        terms = _key_terms(node.name.value)
        for item, key in zip(checklist, keys):
            padded = f" {key} "
            if name_words and name_words in padded:
                self.warning(item.span, f"checklist item names its own pattern (`{node.name.value}`)",
                             "describe the behaviour; a judge must not be told the pattern's name")
            elif "_" in pid and re.search(rf"(?<![a-z0-9_]){re.escape(pid)}(?![a-z0-9_])", item.value.lower()):
                self.warning(item.span, f"checklist item uses the pattern's id `{pid}`",
                             "describe the behaviour in plain words; a judge must not be told the pattern")
            else:
                used = [t for t in terms if f" {t} " in padded or f" {t}s " in padded]
                if used:
                    self.warning(item.span, f"checklist item uses `{used[0]}`, a key term of its pattern's name "
                                            f"(`{node.name.value}`)",
                                 "describe the observable behaviour without the term that names the pattern")
        manifestations = [f.text.value for f in fields if isinstance(f, ast.Manifestation)]
        if len(manifestations) < MIN_MANIFESTATIONS:
            self.warning(node.id.span, f"pattern `{pid}` has {plural(len(manifestations), 'manifestation')}",
                         f"give at least {MIN_MANIFESTATIONS} real-world examples")
        sources = [m.Source(f.authors.value, f.year, f.title.value, f.venue.value)
                   for f in fields if isinstance(f, ast.Source)]
        if len(sources) < MIN_SOURCES:
            self.warning(node.id.span, f"pattern `{pid}` has {plural(len(sources), 'source')}",
                         f"cite at least {MIN_SOURCES} works that support it")
        tags = tuple(t.value for f in fields if isinstance(f, ast.Tags) for t in f.values)
        return m.Pattern(pid, node.name.value, fam or "", dim, pol,
                         definition.text.value if definition else "", tuple(mechanisms),
                         tuple(manifestations), tuple(i.value for i in checklist), tuple(sources), tags,
                         where=where(node.id.span))

    def library_warnings(self, patterns: list[m.Pattern]) -> None:
        owners: dict[str, tuple[str, Span | None]] = {}
        names = _NameIndex([p for p in patterns])
        for p in patterns:
            spans = self.item_spans.get(p.id) or [None] * len(p.checklist)
            for item, key, span in zip(p.checklist, self.item_keys.get(p.id) or map(_norm, p.checklist), spans):
                owner = owners.get(key)
                if owner is not None and owner[0] != p.id:
                    message = f"checklist item of `{p.id}` repeats one of `{owner[0]}`: \"{item}\""
                    hint = f"the other item is at {where(owner[1]) or owner[0]}; make each pattern's items specific to it"
                    if span is not None:
                        self.error(span, message, hint)
                    else:
                        self.error_at(p.where, message, hint)
                owners.setdefault(key, (p.id, span))
                other = names.find(key, p.id)
                if other is not None and span is not None and not in_stdlib_span(span):
                    self.warning(span, f"checklist item names another pattern (`{other.name}`)",
                                 "describe the behaviour; a judge must not be told which pattern it looks for")

    # -- references
    def resolve(self, names: Iterable[ast.Name], ids: dict) -> list[str] | None:
        """The ids, or None after reporting each unknown one."""
        ok = True
        for n in names:
            if n.value not in ids:
                ok = False
                self.error(n.span, f"unknown pattern `{n.value}`{suggestion(n.value, ids)}",
                           "interactions and exclusions name patterns by id (the word after `pattern`)")
        return [n.value for n in names] if ok else None

    def _distinct(self, names: list[str], span, what: str) -> bool:
        repeated = [k for k, v in Counter(names).items() if v > 1]
        if repeated:
            self.error(span, f"`{repeated[0]}` appears twice in one {what}")
            return False
        if len(names) < 2:
            self.error(span, f"an {what} needs at least two patterns")
            return False
        return True

    def exclusion(self, node: ast.Exclusion, ids) -> m.Exclusion | None:
        names = self.resolve(node.patterns, ids)
        if names is None or not self._distinct(names, node.span, "exclusion"):
            return None
        return m.Exclusion(tuple(names), node.because.text.value if node.because else "", where(node.span))

    def interactions(self, ids, exclusions: list[m.Exclusion]) -> list[m.Interaction]:
        excluded = {frozenset(p) for e in exclusions for p in itertools.combinations(e.patterns, 2)}
        pair_types: dict[frozenset, tuple[str, ast.Interaction]] = {}
        result = []
        for node in self._items(ast.Interaction):
            kind = node.type.value
            if kind not in m.INTERACTION_TYPES:
                self.error(node.type.span, f"unknown interaction type `{kind}`{suggestion(kind, m.INTERACTION_TYPES)}",
                           "an interaction is `reinforce`, `conflict` or `modulate`")
                continue
            sources = self.resolve(node.patterns, ids)
            targets = self.resolve(node.targets, ids) if node.targets is not None else []
            if sources is None or targets is None:
                continue
            names = sources + targets
            if not self._distinct(names, node.span, "interaction"):
                continue
            if kind == "modulate" and node.targets is None:
                self.error(node.type.span, "`modulate` is directed: say which pattern shapes which",
                           "write `interaction shaper -> shaped: modulate { ... }`")
                continue
            if kind != "modulate" and node.targets is not None:
                self.error(node.span, f"only `modulate` takes a direction (`->`); `{kind}` is mutual",
                           f"write `interaction {', '.join(names)}: {kind}`")
                continue
            if node.because is None:
                self.warning(node.span, "interaction has no `because`", 'add `because "..."`: why the patterns interact')
            if node.expect is None:
                self.warning(node.span, "interaction has no `expect`", 'add `expect "..."`: what the joint behaviour looks like')
            dims = Counter(ids[n].dimension for n in names if ids[n].is_trait)
            same = [d for d, c in dims.items() if c > 1]
            if same:
                self.warning(node.span, f"this interaction joins two `{same[0]}` traits, which never share a scenario",
                             "a scenario holds at most one trait per Big Five dimension")
            for a, b in itertools.combinations(names, 2):
                pair = frozenset((a, b))
                if pair in excluded:
                    self.error(node.span, f"`{a}` and `{b}` interact here but are excluded from sharing a scenario",
                               "remove the interaction or the `exclude`")
                    continue
                previous = pair_types.get(pair)
                if previous is None:
                    pair_types[pair] = (kind, node)
                elif {previous[0], kind} == {"reinforce", "conflict"}:
                    self.error(node.span, f"`{a}` and `{b}` are declared both to reinforce and to conflict",
                               f"the other declaration is at {where(previous[1].span)}; keep one")
                elif previous[0] == kind:
                    self.warning(node.span, f"`{a}` and `{b}` already have a `{kind}` interaction",
                                 f"at {where(previous[1].span)}")
            direction = m.Direction(tuple(sources), tuple(targets)) if kind == "modulate" else None
            result.append(m.Interaction(tuple(names), kind, direction,
                                        node.because.text.value if node.because else "",
                                        node.expect.text.value if node.expect else "", where(node.span)))
        return result

    # -- datasets
    def dataset(self, node: ast.Dataset, lib: m.Library) -> m.Dataset | None:
        errors_before = len(self.errors())
        did = node.id.value
        single: dict[str, object] = {}

        def once(key: str, f) -> None:
            if key in single:
                self.error(f.span, f"dataset `{did}` sets `{key}` twice", f"the first is at {where(single[key].span)}")
            single[key] = f

        holds, evals = None, {}
        for f in node.fields:
            key = {ast.Range: lambda: f.kind, ast.Include: lambda: f"include {f.kind}"}.get(type(f), lambda: type(f).__name__.lower())()
            once(key, f)
            if isinstance(f, ast.Split):
                for g in f.fields:
                    if isinstance(g, ast.HoldOut):
                        if holds is not None:
                            self.error(g.span, "`hold_out` is set twice")
                        holds = g
                    else:
                        if g.kind in evals:
                            self.error(g.span, f"`{g.kind}` is set twice")
                        evals[g.kind] = g
        if "scenarios" not in single:
            self.error(node.id.span, f"dataset `{did}` has no `scenarios` count", "add `scenarios N`")
            return None
        scenarios = single["scenarios"].count
        if scenarios < 1:
            self.error(single["scenarios"].span, "a dataset needs at least one scenario")
        elif scenarios > LIMITS["scenarios"][0]:
            self.error(single["scenarios"].span, f"`scenarios {scenarios}`: compile plans at most "
                                                 f"{LIMITS['scenarios'][0]:,} scenarios per dataset", LIMITS["scenarios"][1])
        ranges = {"patterns": (2, 5), "characters": (2, 6), "turns": (12, 20)}
        minimum = {"patterns": 1, "characters": MIN_CHARACTERS, "turns": MIN_TURNS}
        for kind in ranges:
            r = single.get(kind)
            if r is None:
                continue
            if r.low > r.high:
                self.error(r.span, f"`{kind} {r.low}..{r.high}`: the low end is above the high end",
                           f"write `{kind} {r.high}..{r.low}`")
            elif r.low < minimum[kind]:
                self.error(r.span, f"`{kind}` must start at {minimum[kind]} or more",
                           {"patterns": "a scenario acts out at least one pattern",
                            "characters": "a conversation needs at least two characters",
                            "turns": "a supporting character opens and the protagonist closes"}[kind])
            elif kind in LIMITS and r.high > LIMITS[kind][0]:
                self.error(r.span, f"`{kind} {r.low}..{r.high}`: compile can make at most {LIMITS[kind][0]} {kind}",
                           LIMITS[kind][1])
            ranges[kind] = (r.low, r.high)

        def names_of(kind: str, known: dict, label: str):
            inc = single.get(f"include {kind}")
            if inc is None or inc.names is None:
                return None
            for n in inc.names:
                if n.value not in known:
                    self.error(n.span, f"unknown {label} `{n.value}`{suggestion(n.value, known)}")
            return tuple(n.value for n in inc.names)

        include_patterns = names_of("patterns", lib.by_id, "pattern")
        include_situations = names_of("situations", {s.id: s for s in lib.situations}, "situation")
        include_domains = names_of("domains", {d.id: d for d in lib.domains}, "domain")
        quotas: dict[str, int] = {}
        if holds is not None:
            for q in holds.quotas or ():
                if q.family.value not in m.FAMILIES:
                    self.error(q.family.span, f"unknown family `{q.family.value}`{suggestion(q.family.value, m.FAMILIES)}")
                elif q.family.value in quotas:
                    self.error(q.span, f"quota for `{q.family.value}` is set twice")
                else:
                    quotas[q.family.value] = q.count
            # the sum is only meaningful once every quota was accepted (no cascade of errors)
            if holds.quotas and len(quotas) == len(holds.quotas) and sum(quotas.values()) != holds.count:
                self.error(holds.span, f"`hold_out {holds.count}` but the quotas add up to {sum(quotas.values())}",
                           "make the family quotas sum to the hold-out count")
        bundle = self.bundle(single.get("bundle"), ranges["patterns"], single.get("patterns"))
        cast = self.cast(single.get("cast"), ranges["characters"])
        dataset = m.Dataset(
            did, scenarios, ranges["patterns"], ranges["characters"], ranges["turns"],
            single["seed"].value if "seed" in single else 0, "default" in single,
            single["describe"].text.value if "describe" in single else "",
            include_patterns, include_situations, include_domains,
            m.HoldOut(holds.count if holds else 0, quotas),
            evals["id_eval"].count if "id_eval" in evals else 0,
            evals["ood_eval"].count if "ood_eval" in evals else 0,
            evals["mixed_eval"].count if "mixed_eval" in evals else 0,
            bundle, cast, where=where(node.id.span))
        if len(self.errors()) > errors_before:
            return dataset
        from .satisfy import unreachable, unsatisfiable  # the feasibility rules live with the plan's rules

        anchors = {"hold_out": holds, "patterns": single.get("patterns"), "bundle": single.get("bundle"),
                   "id_eval": evals.get("id_eval"), "ood_eval": evals.get("ood_eval"), "mixed_eval": evals.get("mixed_eval")}
        problems = unsatisfiable(dataset, lib)
        for problem in problems:
            anchor = anchors.get(problem.field) or node.id
            self.error(anchor.span, f"dataset `{did}` cannot be satisfied: {problem.message}", problem.hint)
        for problem in [] if problems else unreachable(dataset, lib):
            anchor = anchors.get(problem.field) or node.id
            self.warning(anchor.span, f"dataset `{did}`: {problem.message}", problem.hint)
        return dataset

    def percent(self, node: ast.Percent, what: str) -> float:
        if node.value > 100:
            self.error(node.span, f"{what} is {node.value}%, more than 100%", "a share lies between 0% and 100%")
        return float(node.value) / 100

    def bundle(self, node: ast.Bundle | None, patterns: tuple[int, int], patterns_node) -> tuple[m.FamilyRule, ...]:
        """The checked composition rules of a `bundle { ... }` block."""
        if node is None:
            return ()
        rules: dict[str, m.FamilyRule] = {}
        errors_before = len(self.errors())
        for r in node.rules:
            family = r.family.value
            if family not in m.FAMILIES:
                self.error(r.family.span, f"unknown family `{family}`{suggestion(family, m.FAMILIES)}",
                           "a bundle rule starts with `trait` or `social_cognitive`")
                continue
            if family in rules:
                self.error(r.span, f"the bundle sets `{family}` twice", "keep one line per family")
                continue
            if r.low > r.high:
                self.error(r.span, f"`{family} {r.low}..{r.high}`: the low end is above the high end",
                           f"write `{family} {r.high}..{r.low}`")
            elif r.high == 0:
                self.error(r.span, f"`{family} 0` takes no pattern", "remove the line, or give a count of 1 or more")
            dimensions = len(m.DIMENSIONS)
            if family == "trait" and r.high > dimensions:
                self.error(r.span, f"a bundle cannot take {r.high} traits: traits come from different Big Five "
                                   f"dimensions, and there are {dimensions}", f"take at most {dimensions} traits")
            positive = None
            if r.positive is not None:
                if family != "trait":
                    self.error(r.positive.span, "`positive` is the share of positive-pole trait markers; "
                                                f"`{family}` patterns have no pole", "remove `, positive ...`")
                positive = self.percent(r.positive, "the positive-pole share")
            share = 1.0
            if r.share is not None:
                share = self.percent(r.share, f"the share of scenarios with `{family}` patterns")
                if r.share.value == 0:
                    self.error(r.share.span, f"`in 0% of scenarios`: `{family}` patterns would never appear",
                               "remove the line, or give a share above 0%")
            rules[family] = m.FamilyRule(family, r.low, r.high, positive, min(share, 1.0))
        result = tuple(rules.values())
        if not result or len(self.errors()) > errors_before:  # sizes are only meaningful for valid rules
            return result
        fewest, most = m.bundle_sizes(result)
        lo, hi = patterns
        stated = f"`patterns {lo}..{hi}`" + ("" if patterns_node is not None else " (the default)")
        if fewest < lo:
            why = [f"{r.family} can be absent" for r in result if r.share < 1] + \
                  [f"{r.family} may take {r.low}" for r in result if r.share >= 1 and r.low < r.high]
            self.error(node.span, f"a bundle drawn by these rules can hold as few as {fewest} pattern"
                                  f"{'s' if fewest != 1 else ''}, but {stated} asks for at least {lo}",
                       "raise the counts, make a family appear in every scenario, or lower `patterns`"
                       + (f" ({'; '.join(why)})" if why else ""))
        if most > hi:
            self.error(node.span, f"a bundle drawn by these rules can hold up to {most} patterns, but {stated} "
                                  f"allows at most {hi}", "lower the counts or raise the high end of `patterns`")
        return result

    def cast(self, node: ast.Cast | None, characters: tuple[int, int]) -> tuple[m.CastSize, ...]:
        """The checked weights of a `cast 2: 30%, ...` line."""
        if node is None:
            return ()
        sizes: dict[int, m.CastSize] = {}
        ok = True
        lo, hi = characters
        for w in node.weights:
            if w.size in sizes:
                self.error(w.span, f"the cast gives {w.size} characters twice", "keep one weight per size")
                ok = False
                continue
            if not lo <= w.size <= hi:
                self.error(w.span, f"a cast of {w.size} characters lies outside `characters {lo}..{hi}`",
                           f"use sizes from {lo} to {hi}, or widen `characters`")
                ok = False
            sizes[w.size] = m.CastSize(w.size, self.percent(w.weight, f"the weight of {w.size} characters"))
        total = sum(w.weight.value for w in node.weights)
        if ok and abs(total - 100) > Decimal("0.01"):
            self.error(node.span, f"the cast weights add up to {format(total, 'f')}%, not 100%",
                       "make the weights of all sizes sum to 100%")
        return tuple(sorted(sizes.values(), key=lambda c: c.size))

    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


_NON_WORD = re.compile(r"\W+")


def _norm(text: str) -> str:
    return _NON_WORD.sub(" ", text.lower()).strip()


def _telling_words(name: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if len(w) > 2 and w not in _STOP]


def _name_words(name: str) -> str:
    """The telling words of a name as " w1 w2 ", to look for in f" {_norm(item)} " (whole words,
    in order; a plain substring test, as compiling a regex per pattern is slow on a large library)."""
    words = _telling_words(name)
    return f" {' '.join(words)} " if words else ""


def _name_regex(name: str):
    """The same test as a regex on raw text, or None."""
    words = _telling_words(name)
    if not words:
        return None
    # the whole name, as words, anywhere in the item
    return re.compile(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", re.I)


_STOP = {"the", "and", "of", "effect", "bias", "theory", "principle", "law"}
# words of pattern names that are ordinary enough to appear in any behavioural question
_ORDINARY = _STOP | {"social", "self", "group", "people", "other", "others", "memory", "error", "rule", "mechanism",
                     "hypothesis", "drive", "impulse", "pleasure", "reality", "control", "truth", "world",
                     "attribution", "comparison", "identity", "learning", "perception", "determination", "response"}


def _key_terms(name: str) -> list[str]:
    """The words of a pattern's name that name the pattern itself (`aversion` in "loss aversion"):
    long, specific words of a name of more than one word."""
    words = _telling_words(name)
    if len(words) < 2:
        return []
    return [w for w in words if len(w) >= 7 and w not in _ORDINARY]


def in_stdlib_span(span: Span) -> bool:
    return span.file.startswith(STD_PREFIX)


class _NameIndex:
    """Finds another pattern's full name (its telling words, in order) inside a checklist item."""

    def __init__(self, patterns: list[m.Pattern]):
        self.by_first: dict[str, list[tuple[tuple[str, ...], m.Pattern]]] = {}
        for p in patterns:
            words = tuple(_norm(p.name).split())
            # trait markers are everyday adjectives ("calm", "at ease"); a one-word name must be long to tell
            if not p.is_trait and (len(words) >= 2 or words and len(words[0]) >= 7):
                self.by_first.setdefault(words[0], []).append((words, p))

    def find(self, key: str, own: str) -> m.Pattern | None:
        tokens = key.split()
        for i, token in enumerate(tokens):
            for words, p in self.by_first.get(token, ()):
                if p.id != own and tuple(tokens[i:i + len(words)]) == words:
                    return p
        return None
