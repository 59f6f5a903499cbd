"""Validation of program outputs. Each validator returns the list of problems in plain words;
an empty list means valid. The messages are fed back to the LM on a retry (`feedback_for`).

What a trained model or a judge reads never names a social-cognitive pattern, and never labels
a character with a trait marker; the rules are in docs/validation.md. The validators get the
library's patterns from the caller as a `Vocabulary`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

import attrs

from ..compiler.plan import Slot
from .channels import split_channels

CHECKLIST_ITEMS = (2, 6)


# ---- what is refused -----------------------------------------------------------------------
class PatternLike(Protocol):
    id: str
    name: str
    family: str


# A pattern name's last word that only says what kind of pattern it is: "sunk cost fallacy" is
# also refused as "sunk cost", when what is left has two words or more.
GENERIC_WORDS = ("effect", "bias", "fallacy", "theory", "hypothesis", "principle", "heuristic", "error", "rule")
# One-word names are everyday words ("awe", "jealousy", "conformity", "stereotyping") and pass,
# except these, which only name the pattern.
TECHNICAL_WORDS = frozenset({"anchoring", "groupthink", "reactance", "anthropomorphism", "territoriality"})
# Multi-word names (or what is left of one without its generic word) that are everyday phrases:
# only the id with underscores is refused for them.
EVERYDAY_PHRASES = frozenset({
    "sadistic pleasure", "search for meaning", "status quo", "zero-sum", "self-serving", "third-person",
    "in-group", "self-determination", "social learning", "social identity", "self-perception", "less-is-better",
    "zero-risk", "just-world", "continued influence",
})
# Terms that name the idea of a pattern without naming one.
EXTRA_TERMS = ("cognitive bias", "cognitive distortion", "psychological pattern")

# Generic last words and their plurals, both accepted where a term ends in one.
_PLURALS_OF = {"bias": ("biases",), "fallacy": ("fallacies",), "theory": ("theories",),
               "hypothesis": ("hypotheses",), "effect": ("effects",), "error": ("errors",), "rule": ("rules",),
               "principle": ("principles",), "heuristic": ("heuristics",), "pattern": ("patterns",),
               "distortion": ("distortions",), "stereotype": ("stereotypes",)}
_PLURAL = {word: "(?:" + "|".join(map(re.escape, (word, *plurals))) + ")" for word, plurals in _PLURALS_OF.items()}
_SEP = r"[\s_\-]+"


def _words(term: str) -> list[str]:
    return [w for w in re.split(r"[\s_\-]+", term.lower().replace("&", " and ")) if w]


def key_terms(pattern: PatternLike) -> list[str]:
    """The terms that name a social-cognitive pattern: its name, the parts of a name joined by
    `&`, each without a leading "the" and without a generic last word (kept when two words or
    more remain), and its id; minus everyday words and phrases (see above). Lower case."""
    name = pattern.name.lower()
    terms: list[str] = []
    parts = [p.strip() for p in name.split("&")]
    for part in [name, *parts] if len(parts) > 1 else parts:
        for variant in (part, re.sub(r"^the\s+", "", part)):
            terms.append(variant)
            words = _words(variant)
            if "&" not in variant and len(words) > 2 and words[-1] in GENERIC_WORDS:
                terms.append(" ".join(words[:-1]))
    if "_" in pattern.id:
        terms.append(pattern.id)
    out = []
    for term in dict.fromkeys(terms):
        words = _words(term)
        joined = " ".join(words)
        if len(words) == 1 and joined not in TECHNICAL_WORDS:
            continue
        if joined in {" ".join(_words(p)) for p in EVERYDAY_PHRASES} and "_" not in term:
            continue
        out.append(term)
    return out


_WORD = re.compile(r"[a-z]+")  # a word as `_word_set` cuts a text into words


def _key_word(term: str) -> str:
    """The longest word of `term`, cut as a text is cut (so "parkinson's law" -> "parkinson")."""
    return max(_WORD.findall(term.lower()) or [term.lower()], key=len)


def _key_words(key: str) -> set[str]:
    """The spellings of a key word a text must hold for a term to occur: the word, and its plurals
    where `_term_regex` accepts them (a generic last word)."""
    return {key, *_PLURALS_OF.get(key, ())}


def _word_set(text: str) -> frozenset[str]:
    return frozenset(_WORD.findall(text.lower()))


def _term_regex(term: str) -> str:
    if "_" in term and " " not in term:  # an id: as written
        return re.escape(term)
    words = _words(term)
    parts = [r"(?:and|&)" if w == "and" else re.escape(w) for w in words[:-1]]
    return _SEP.join([*parts, _PLURAL.get(words[-1], re.escape(words[-1]))])


# Trait markers that also name a passing state ("I'm so nervous", "I'm cold"): in a turn they are
# refused only with a sign of a lasting disposition ("a nervous person", "nervous by nature").
STATE_WORDS = frozenset({
    "anxious", "nervous", "jealous", "envious", "calm", "relaxed", "at ease", "composed", "content", "secure",
    "insecure", "stable", "quiet", "silent", "cold", "careful", "active", "energetic", "enthusiastic",
    "withdrawn", "critical", "moody", "touchy", "poised", "deep", "bright", "simple", "complex", "bold",
})
_PRONOUNS = ("i", "you", "he", "she", "they", "we")
_CONTRACTED = r"['’](?:m|re|s|ve\s+always\s+been)"  # only after a pronoun: "Ann's" may be a possessive
_COPULA = r"(?:am|are|is|was|were|seems?|seemed|has\s+always\s+been|have\s+always\s+been)"
_ADVERBS = (r"(?:so|very|really|quite|too|pretty|rather|extremely|incredibly|naturally|always|such|a|an|the|"
            r"most|kind\s+of|sort\s+of|deeply|painfully|fairly|notoriously|genuinely|truly|just|terribly|awfully|"
            r"a\s+bit|a\s+little|generally|usually|basically|simply|famously|by\s+nature)")
_DISPOSITION = {"always", "naturally", "such", "notoriously", "famously", "generally", "usually", "basically"}
_PERSON = r"(?:person|people|type|one|soul|guy|man|woman|kid|girl|boy|sort|kind|character|individual)"
# A trait word followed by one of these describes a state with its cause ("nervous about the
# audit", "critical of the plan"), not the character.
_COMPLEMENT = (r"(?:about|of|with|to|for|at|that|in|on|around|when|because|after|before|since|from|toward|"
               r"towards|today|tonight|now|this|again|enough|than)")


@attrs.frozen
class Vocabulary:
    """What the validators refuse: the key terms of the library's social-cognitive patterns and
    its trait markers used as labels. Build it once per library with `Vocabulary.of`."""

    terms: dict[str, str]  # key term -> pattern id
    traits: frozenset[str]
    # Cheap first checks: a text can hold a term only if it holds that term's key word, and a
    # trait label only if it holds a trait's first word (most texts hold neither).
    by_key: dict[str, re.Pattern] = attrs.field(factory=dict, eq=False, repr=False)  # key word -> its terms
    trait_words: frozenset[str] = attrs.field(default=frozenset(), eq=False, repr=False)

    @classmethod
    def of(cls, patterns: Iterable[PatternLike]) -> "Vocabulary":
        terms: dict[str, str] = {t: "" for t in EXTRA_TERMS}
        traits = set()
        for p in patterns:
            if p.family == "trait":
                traits.update({p.name.lower(), p.id.replace("_", " ").lower()})
            else:
                terms.update({t: p.id for t in key_terms(p)})
        grouped: dict[str, list[str]] = {}
        for term in terms:
            grouped.setdefault(_key_word(term), []).append(term)
        by_key = {}
        for key, group in grouped.items():
            alternation = "|".join(_term_regex(t) for t in sorted(group, key=len, reverse=True))
            found = re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.I)
            by_key.update({spelling: found for spelling in _key_words(key)})
        return cls(terms, frozenset(traits), by_key, frozenset(_WORD.findall(t)[0] for t in traits if _WORD.search(t)))

    def may_flag(self, words: frozenset[str]) -> bool:
        """Whether a text with these words (`_word_set`) can hold a pattern term or a trait label."""
        return not (self.trait_words.isdisjoint(words) and self.by_key.keys().isdisjoint(words))

    def pattern_terms(self, text: str, words: frozenset[str] | None = None) -> list[str]:
        """The pattern key terms that occur in `text`, as written there (`words`: its `_word_set`).
        Only the terms whose key word the text holds are searched; a term found inside a longer
        one ("sunk cost" in "sunk cost fallacy") is not reported again."""
        if not text:
            return []
        regexes = {id(r): r for w in (_word_set(text) if words is None else words) if (r := self.by_key.get(w))}
        spans = sorted(((m.start(), -m.end(), m.group(0)) for r in regexes.values() for m in r.finditer(text)))
        kept, end = [], -1
        for start, neg_end, found in spans:
            if -neg_end > end:
                kept.append(found)
                end = -neg_end
        return list(dict.fromkeys(kept))

    def trait_labels(self, text: str, names: Sequence[str], *, profile: bool,
                     words: frozenset[str] | None = None) -> list[str]:
        """Phrases of `text` that label one of `names` (or I/you/he/she/they/we) with a trait
        marker. In a profile or background any such label counts; in a turn a marker that also
        names a passing state ("nervous") counts only with a sign of disposition."""
        if not self.traits or not text or self.trait_words.isdisjoint(_word_set(text) if words is None else words):
            return []
        found, people = [], _people(names)
        for m in _label_regex(self.traits).finditer(text):
            subject = (m.group("subject") or "").lower()
            if subject and subject not in people and subject.split()[-1] not in people:
                continue
            adverbs = set(re.split(r"\s+", (m.group("adv") or "").lower().strip()))
            lasting = bool(m.group("tail")) or bool(adverbs & _DISPOSITION)
            if lasting or profile or m.group("trait").lower() not in STATE_WORDS:
                found.append(m.group(0))
        return list(dict.fromkeys(found))

    def problems(self, where: str, text: str, names: Sequence[str] = (), *, profile: bool | None = None,
                 words: frozenset[str] | None = None) -> list[str]:
        """Problems of one text: pattern terms, and trait labels when `profile` is not None.
        `words`: its `_word_set`, when the caller has it."""
        words = _word_set(text or "") if words is None else words
        out = [f"{where} names the pattern `{t}`: show it in what people think, do and say, never by name"
               for t in self.pattern_terms(text, words)]
        if profile is not None:
            out += [f"{where} labels a character with a trait word (\"{t}\"): show the trait in behaviour instead"
                    for t in self.trait_labels(text, names, profile=profile, words=words)]
        return out


@functools.lru_cache(maxsize=8)
def _label_regex(traits: frozenset[str]) -> re.Pattern:
    """One regex per library: the subject is any one or two words, and `trait_labels` keeps only
    matches whose subject is a character (or a pronoun), so no regex is compiled per cast."""
    pronoun = "|".join(_PRONOUNS)
    trait = "|".join(_SEP.join(re.escape(w) for w in t.split()) for t in sorted(traits, key=len, reverse=True))
    head = (rf"(?<![\w'’])(?:(?:{pronoun})\s*{_CONTRACTED}|(?P<subject>[\w'’-]+(?:\s+[\w'’-]+)?)\s+{_COPULA})"
            rf"(?P<adv>(?:\s+{_ADVERBS})*)\s+(?P<trait>{trait})")
    tail = rf"(?P<tail>(?:\s+(?:and|or)\s+\w+)?\s+(?:{_PERSON}|by\s+nature)\b)"
    return re.compile(rf"{head}(?:{tail}|(?![\w-])(?!\s+{_COMPLEMENT}\b))", re.I)


def _people(names: Sequence[str]) -> frozenset[str]:
    """Who a label can be about: each character by full and first name, and the pronouns."""
    people = set(_PRONOUNS)
    for n in names:
        people.add(n.lower())
        people.update(w.lower() for w in n.split()[:1])
    return frozenset(people)


# ---- validators ------------------------------------------------------------------------------
def _names_of(characters: list[dict]) -> list[str]:
    return [c.get("name", "") for c in characters if isinstance(c, dict)]


def scenario_problems(out: dict, slot: Slot, names: list[str], vocabulary: Vocabulary | None = None) -> list[str]:
    problems = []
    chars = [c.get("name", "") for c in out.get("characters", [])]
    if len(chars) != slot.characters:
        problems.append(f"there must be exactly {slot.characters} characters, not {len(chars)}")
    if len(set(chars)) != len(chars):
        problems.append("two characters share a name")
    unknown = [c for c in chars if c not in names]
    if unknown:
        problems.append(f"use the candidate names exactly as written; not: {', '.join(unknown)}")
    if not out.get("background", "").strip():
        problems.append("the background is empty")
    protagonist = out.get("protagonist", "")
    if protagonist not in chars:
        problems.append(f"the protagonist `{protagonist}` is not one of the characters")
    c2p = out.get("char2pattern", {})
    for who, ids in c2p.items():
        if who not in chars:
            problems.append(f"char2pattern names `{who}`, who is not a character")
        stray = [i for i in ids if i not in slot.patterns]
        if stray:
            problems.append(f"char2pattern uses patterns not in this scenario: {', '.join(stray)}")
    assigned = {i for ids in c2p.values() for i in ids}
    missing = [p for p in slot.patterns if p not in assigned]
    if missing:
        problems.append(f"every pattern must go to a character; unassigned: {', '.join(missing)}")
    if protagonist in chars and not c2p.get(protagonist):
        problems.append("the protagonist must carry at least one pattern")
    for c in out.get("characters", []):
        if not c.get("about_self", "").strip():
            problems.append(f"{c.get('name')} has no `about_self`")
    if vocabulary is not None:
        problems += vocabulary.problems("the background", out.get("background", ""), chars, profile=True)
        for c in out.get("characters", []):
            who = c.get("name", "")
            problems += vocabulary.problems(f"{who}'s about_self", c.get("about_self", ""), chars, profile=True)
            for other, view in (c.get("about_others") or {}).items():
                problems += vocabulary.problems(f"{who}'s view of {other}", str(view), chars, profile=True)
    return problems


def conversation_problems(turns: list[dict], scenario: dict, turn_range: tuple[int, int],
                          vocabulary: Vocabulary) -> list[str]:
    problems = []
    chars = [c["name"] for c in scenario["characters"]]
    protagonist = scenario["protagonist"]
    low, high = turn_range
    if not low <= len(turns) <= high:
        problems.append(f"the conversation has {len(turns)} turns; it needs {low} to {high}")
    if not turns:
        return problems
    for k, t in enumerate(turns, 1):
        who = t.get("char", "")
        if who not in chars:
            problems.append(f"turn {k}: `{who}` is not a character (use exactly: {', '.join(chars)})")
        if k > 1 and who == turns[k - 2].get("char"):
            problems.append(f"turn {k}: {who} speaks twice in a row")
        ch = split_channels(t.get("content", ""))
        if not ch.thought:
            problems.append(f"turn {k}: no [inner thought]")
        if not (ch.action or ch.speech):
            problems.append(f"turn {k}: neither an (action) nor speech")
        for seg in ch.segments:
            words = _word_set(seg.text)
            if vocabulary.may_flag(words):  # most segments hold no word to look for
                problems += vocabulary.problems(f"turn {k} ({seg.kind})", seg.text, chars, profile=False, words=words)
    if turns[0].get("char") == protagonist:
        problems.append("a supporting character must open; the protagonist opened")
    if turns[-1].get("char") != protagonist:
        problems.append(f"the protagonist ({protagonist}) must speak last")
    return problems


def checklist_problems(checklist: dict, scenario: dict, vocabulary: Vocabulary | None = None) -> list[str]:
    problems = []
    carriers = [who for who, ids in scenario["char2pattern"].items() if ids]
    low, high = CHECKLIST_ITEMS
    for who in carriers:
        items = checklist.get(who)
        if items is None:
            problems.append(f"no checklist for {who}")
        elif not low <= len(items) <= high:
            problems.append(f"{who} has {len(items)} checklist items; give {low} to {high}")
        elif any(not str(i).strip() for i in items):
            problems.append(f"{who} has an empty checklist item")
    for who in checklist:
        if who not in carriers:
            problems.append(f"the checklist names `{who}`, who carries no pattern")
    if vocabulary is not None:
        for who, items in checklist.items():
            for k, item in enumerate(items or [], 1):
                problems += vocabulary.problems(f"{who}'s checklist item {k}", str(item))
    return problems


def variation_problems(out: dict, scenario: dict, vocabulary: Vocabulary | None = None) -> list[str]:
    """The varied checklist as a checklist; the varied background and the changed factors (read
    by later programs and, as a background, by a trained model) as texts. The analysis is the
    designer's note, like the design analysis, and may name patterns."""
    problems = checklist_problems(out.get("varied_checklist", {}), scenario, vocabulary)
    if vocabulary is not None:
        chars = _names_of(scenario.get("characters", []))
        problems += vocabulary.problems("the varied background", out.get("varied_background", ""), chars,
                                        profile=True)
        for k, factor in enumerate(out.get("changed_factors") or [], 1):
            problems += vocabulary.problems(f"changed factor {k}", str(factor))
    return problems


# ---- retry feedback ------------------------------------------------------------------------
def problems_of(exc: BaseException) -> list[str]:
    """An unusable answer's problems in the model's own terms (no parser internals)."""
    from .adapter import AnswerProblem

    if isinstance(exc, AnswerProblem):
        return [exc.problem]
    text = str(exc)
    if "finish_reason=length" in text or type(exc).__name__ == "TruncatedOutput":
        return ["the answer was cut off at the token limit (finish_reason=length); answer more briefly"]
    return ["the answer could not be read: write each output field after its [[ ## name ## ]] marker, "
            "then [[ ## completed ## ]]"]


def feedback_for(problem: BaseException | Sequence[str], attempt: int) -> str:
    """The feedback input of the attempt after `attempt` (0-based): what to fix, and which
    attempt this is, so that no retry resends a byte-identical prompt."""
    problems = problems_of(problem) if isinstance(problem, BaseException) else list(problem)
    plain = [p.replace("(finish_reason=length)", "before [[ ## completed ## ]]") for p in problems]
    return (f"This is attempt {attempt + 2}; attempt {attempt + 1} was rejected. Fix these problems: "
            + "; ".join(plain) + ". Write each output field after its [[ ## name ## ]] marker, then "
            "[[ ## completed ## ]].")
