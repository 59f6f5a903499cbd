"""The canonical formatter: syntax tree (+ comments) -> text.

Fields keep their source order; layout, indentation, quoting and spacing are canonical; comments
are kept: a comment is printed before the first node that follows it, or after a node that ends
on its line. A single blank line between fields of a block is kept where the source had one.
"""

from __future__ import annotations

from collections import deque
from functools import singledispatchmethod

from . import ast
from .parser import long_string_value

INDENT = "  "


def quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")\
        .replace("\r", "\\r")
    return f'"{escaped}"'


def percent(node: ast.Percent) -> str:
    return format(node.value, "f") + "%"


def can_be_long(value: str) -> bool:
    """Whether `value` survives a round trip through a \"\"\" string unchanged."""
    if '"""' in value or value.endswith('"') or "\\" in value or "\t" in value or "\r" in value:
        return False
    return long_string_value("\n" + value + "\n") == value


def _override(node) -> str:
    return "override " if node.override else ""


def format_module(module: ast.Module) -> str:
    return _Printer(module.comments).module(module)


class _Printer:
    def __init__(self, comments):
        self.comments = deque(sorted(comments, key=lambda c: (c.span.line, c.span.column)))
        self.out: list[str] = []
        self.last_line = 0  # last source line printed (0: none)

    # -- comment and layout helpers
    def _flush_before(self, line: int, depth: int) -> None:
        while self.comments and self.comments[0].span.line < line:
            comment = self.comments.popleft()
            self._gap(comment.span.line, depth)
            self.out.append(INDENT * depth + comment.text)
            self.last_line = comment.span.end_line

    def _trailing(self, line: int) -> None:
        parts = []
        while self.comments and self.comments[0].span.line == line:
            parts.append(self.comments.popleft().text)
        if parts and self.out:
            self.out[-1] += "  " + " ".join(parts)

    def _gap(self, line: int, depth: int) -> None:
        """Keep one blank line where the source had at least one."""
        if self.last_line and line - self.last_line > 1 and self.out and self.out[-1].strip() not in ("", "{") \
                and not self.out[-1].endswith("{"):
            self.out.append("")

    def _begin(self, node, depth: int) -> None:
        if node.span is not None:
            self._flush_before(node.span.line, depth)
            self._gap(node.span.line, depth)

    def _end(self, node) -> None:
        if node.span is not None:
            self.last_line = node.span.end_line
            self._trailing(node.span.end_line)

    def _line(self, node, depth: int, text: str) -> None:
        self._begin(node, depth)
        self.out.append(INDENT * depth + text)
        self._end(node)

    def _block(self, node, depth: int, header: str, children, print_child) -> None:
        self._begin(node, depth)
        end = node.span.end_line if node.span is not None else 0
        if not children and not (self.comments and self.comments[0].span.line < end):
            self.out.append(INDENT * depth + header + " {}")
            self._end(node)
            return
        self.out.append(INDENT * depth + header + " {")
        if node.span is not None:
            self.last_line = node.span.line
            self._trailing(node.span.line)
        for child in children:
            print_child(child, depth + 1)
        if node.span is not None:
            self._flush_before(node.span.end_line, depth + 1)
        self.out.append(INDENT * depth + "}")
        self._end(node)

    def _text(self, keyword: str, node, text: ast.Str, depth: int) -> None:
        value = text.value
        if "\n" in value and can_be_long(value):
            self._begin(node, depth)
            pad = INDENT * (depth + 1)
            self.out.append(INDENT * depth + f'{keyword} """')
            self.out.extend(pad + line if line else "" for line in value.split("\n"))
            self.out.append(INDENT * depth + '"""')
            self._end(node)
        else:
            self._line(node, depth, f"{keyword} {quote(value)}")

    # -- module
    def module(self, module: ast.Module) -> str:
        for i, item in enumerate(module.items):
            if i and self.out and self.out[-1] != "" and not self._is_short(item, module.items[i - 1]):
                self.out.append("")
            self.item(item, 0)
        self._flush_before(10**12, 0)
        text = "\n".join(self.out).strip("\n")
        return text + "\n" if text else ""

    @staticmethod
    def _is_short(item, previous) -> bool:
        """One-line declarations of one kind stay together without blank lines between them."""
        one_line = (ast.Use, ast.Exclusion, ast.Situation, ast.Domain)
        if type(item) is not type(previous) or not isinstance(item, one_line):
            return False
        return getattr(item, "describe", None) is None and getattr(item, "because", None) is None \
            and getattr(previous, "describe", None) is None and getattr(previous, "because", None) is None

    @singledispatchmethod
    def item(self, node, depth: int) -> None:
        raise TypeError(f"cannot format {type(node).__name__}")

    @item.register
    def _(self, node: ast.Use, depth: int) -> None:
        self._line(node, depth, f"use {'std ' if node.std else ''}{quote(node.path.value)}")

    @item.register
    def _(self, node: ast.Pattern, depth: int) -> None:
        self._block(node, depth, f"{_override(node)}pattern {node.id.value} {quote(node.name.value)}", node.fields, self.field)

    @item.register
    def _(self, node: ast.Interaction, depth: int) -> None:
        left = ", ".join(n.value for n in node.patterns)
        if node.targets is not None:
            left += " -> " + ", ".join(n.value for n in node.targets)
        header = f"interaction {left}: {node.type.value}"
        body = [x for x in (node.because, node.expect) if x is not None]
        self._block(node, depth, header, body, self.field)

    @item.register
    def _(self, node: ast.Exclusion, depth: int) -> None:
        header = "exclude " + ", ".join(n.value for n in node.patterns)
        if node.because is None:
            self._line(node, depth, header)
        else:
            self._block(node, depth, header, [node.because], self.field)

    @item.register
    def _(self, node: ast.Situation, depth: int) -> None:
        self._named(node, depth, "situation")

    @item.register
    def _(self, node: ast.Domain, depth: int) -> None:
        self._named(node, depth, "domain")

    def _named(self, node, depth: int, keyword: str) -> None:
        header = f"{_override(node)}{keyword} {node.id.value} {quote(node.name.value)}"
        if node.describe is None:
            self._line(node, depth, header)
        else:
            self._block(node, depth, header, [node.describe], self.field)

    @item.register
    def _(self, node: ast.Dataset, depth: int) -> None:
        self._block(node, depth, f"{_override(node)}dataset {node.id.value}", node.fields, self.field)

    # -- fields
    @singledispatchmethod
    def field(self, node, depth: int) -> None:
        raise TypeError(f"cannot format {type(node).__name__}")

    @field.register
    def _(self, node: ast.Family, depth: int) -> None:
        self._line(node, depth, f"family {node.value.value}")

    @field.register
    def _(self, node: ast.Dimension, depth: int) -> None:
        self._line(node, depth, f"dimension {node.value.value}")

    @field.register
    def _(self, node: ast.Pole, depth: int) -> None:
        self._line(node, depth, f"pole {node.value.value}")

    @field.register
    def _(self, node: ast.Tags, depth: int) -> None:
        self._line(node, depth, "tags " + ", ".join(quote(t.value) for t in node.values))

    @field.register
    def _(self, node: ast.Definition, depth: int) -> None:
        self._text("definition", node, node.text, depth)

    @field.register
    def _(self, node: ast.Mechanism, depth: int) -> None:
        self._text(f"mechanism {node.kind.value}", node, node.text, depth)

    @field.register
    def _(self, node: ast.Manifestation, depth: int) -> None:
        self._text("manifestation", node, node.text, depth)

    @field.register
    def _(self, node: ast.Checklist, depth: int) -> None:
        self._block(node, depth, "checklist", node.items,
                    lambda item, d: self._line(item, d, quote(item.value)))

    @field.register
    def _(self, node: ast.Source, depth: int) -> None:
        self._line(node, depth, f"source {quote(node.authors.value)} ({node.year}) "
                                f"{quote(node.title.value)} in {quote(node.venue.value)}")

    @field.register
    def _(self, node: ast.Because, depth: int) -> None:
        self._text("because", node, node.text, depth)

    @field.register
    def _(self, node: ast.Expect, depth: int) -> None:
        self._text("expect", node, node.text, depth)

    @field.register
    def _(self, node: ast.Describe, depth: int) -> None:
        self._text("describe", node, node.text, depth)

    @field.register
    def _(self, node: ast.Default, depth: int) -> None:
        self._line(node, depth, "default")

    @field.register
    def _(self, node: ast.Scenarios, depth: int) -> None:
        self._line(node, depth, f"scenarios {node.count}")

    @field.register
    def _(self, node: ast.Range, depth: int) -> None:
        self._line(node, depth, f"{node.kind} {node.low}..{node.high}")

    @field.register
    def _(self, node: ast.Seed, depth: int) -> None:
        self._line(node, depth, f"seed {node.value}")

    @field.register
    def _(self, node: ast.Include, depth: int) -> None:
        names = "all" if node.names is None else ", ".join(n.value for n in node.names)
        self._line(node, depth, f"include {node.kind} {names}")

    @field.register
    def _(self, node: ast.Split, depth: int) -> None:
        self._block(node, depth, "split", node.fields, self.field)

    @field.register
    def _(self, node: ast.HoldOut, depth: int) -> None:
        if node.quotas is None:
            self._line(node, depth, f"hold_out {node.count}")
        else:
            self._block(node, depth, f"hold_out {node.count}", node.quotas,
                        lambda q, d: self._line(q, d, f"{q.family.value} {q.count}"))

    @field.register
    def _(self, node: ast.Bundle, depth: int) -> None:
        self._block(node, depth, "bundle", node.rules, self.field)

    @field.register
    def _(self, node: ast.BundleRule, depth: int) -> None:
        text = f"{node.family.value} {node.low}" + (f"..{node.high}" if node.high != node.low else "")
        if node.positive is not None:
            text += f", positive {percent(node.positive)}"
        if node.share is not None:
            text += f" in {percent(node.share)} of scenarios"
        self._line(node, depth, text)

    @field.register
    def _(self, node: ast.Cast, depth: int) -> None:
        self._line(node, depth, "cast " + ", ".join(f"{w.size}: {percent(w.weight)}" for w in node.weights))

    @field.register
    def _(self, node: ast.EvalSize, depth: int) -> None:
        self._line(node, depth, f"{node.kind} {node.count}")
