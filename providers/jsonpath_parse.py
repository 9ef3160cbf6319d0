"""client-go's JSONPath template parser (util/jsonpath/parser.go), ported: text, fields,
arrays and slices, filters, unions, recursion, ``{range}``/``{end}``, Go's quoted-string
escapes. The nodes it builds are evaluated by providers/jsonpath.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ArrayNode",
    "FieldNode",
    "FilterNode",
    "IdentifierNode",
    "JSONPathError",
    "ListNode",
    "LiteralNode",
    "ParamNode",
    "Parser",
    "RecursiveNode",
    "TextNode",
    "UnionNode",
    "WildcardNode",
    "parse_action",
    "unquote_extend",
]


class JSONPathError(ValueError):
    """Parse or evaluation error; str() is client-go's message."""


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_SIMPLE_ESCAPES.update({"\\": "\\", "'": "'", '"': '"'})


def unquote_extend(text: str) -> str:
    """strconv.Unquote that also accepts single-quoted strings (client-go UnquoteExtend)."""
    if len(text) < 2 or text[0] != text[-1] or text[0] not in "\"'":
        raise ValueError("invalid syntax")
    quote, body = text[0], text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == quote:
            raise ValueError("invalid syntax")
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError("invalid syntax")
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES:
            if esc in "'\"" and esc != quote:
                raise ValueError("invalid syntax")
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 16)))
            i += 2 + width
        elif esc in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits):
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


# -- nodes -------------------------------------------------------------------


@dataclass
class ListNode:
    nodes: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class TextNode:
    text: str


@dataclass(frozen=True)
class FieldNode:
    name: str


@dataclass(frozen=True)
class ParamNode:
    value: int = 0
    known: bool = False
    derived: bool = False


@dataclass(frozen=True)
class ArrayNode:
    params: tuple[ParamNode, ParamNode, ParamNode]


@dataclass(frozen=True)
class FilterNode:
    left: ListNode
    right: ListNode
    op: str


@dataclass(frozen=True)
class LiteralNode:
    value: Any  # int, float or bool


@dataclass(frozen=True)
class WildcardNode:
    pass


@dataclass(frozen=True)
class RecursiveNode:
    pass


@dataclass(frozen=True)
class UnionNode:
    lists: tuple[ListNode, ...]


@dataclass(frozen=True)
class IdentifierNode:
    name: str


# -- parser (a port of client-go's state machine) ------------------------------

_DICT_KEY = re.compile(r"^'([^']*)'$")
_SLICE = re.compile(r"^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$")
_FILTER = re.compile(r"^([^!<>=]+)([!<>=]+)(.+?)$", re.S)
_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")


def _is_alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdigit()


class Parser:
    def __init__(self, text: str) -> None:
        self.input = text
        self.pos = 0
        self.start = 0
        self.root = ListNode()

    def consume(self) -> str:
        value = self.input[self.start : self.pos]
        self.start = self.pos
        return value

    def next(self) -> str:
        if self.pos >= len(self.input):
            return ""
        ch = self.input[self.pos]
        self.pos += 1
        return ch

    def peek(self) -> str:
        return self.input[self.pos] if self.pos < len(self.input) else ""

    def parse(self) -> ListNode:
        self.parse_text()
        return self.root

    def parse_text(self) -> None:
        while True:
            if self.input.startswith("{", self.pos):
                if self.pos > self.start:
                    self.root.nodes.append(TextNode(self.consume()))
                self.pos += 1
                self.consume()
                action = ListNode()
                self.root.nodes.append(action)
                if self.parse_inside(action):
                    continue  # right delimiter reached: back to text
                return
            if self.next() == "":
                break
        if self.pos > self.start:
            self.root.nodes.append(TextNode(self.consume()))

    def parse_inside(self, cur: ListNode) -> bool:
        """Parse one action; True when its closing brace was consumed."""
        while True:
            rest = self.input[self.pos :]
            if rest.startswith("}"):
                self.pos += 1
                self.consume()
                return True
            if rest.startswith("[?("):
                self.parse_filter(cur)
                continue
            if rest.startswith(".."):
                self.parse_recursive(cur)
                continue
            ch = self.next()
            if ch in ("", "\r", "\n"):
                raise JSONPathError("unclosed action")
            if ch in (" ", "@", "$"):
                self.consume()
            elif ch == "[":
                self.parse_array(cur)
            elif ch in ('"', "'"):
                self.parse_quote(cur, ch)
            elif ch == ".":
                self.parse_field(cur)
            elif ch in "+-" or ch.isdigit():
                self.pos -= 1
                self.parse_number(cur)
            elif _is_alnum(ch):
                self.pos -= 1
                self.parse_identifier(cur)
            else:
                raise JSONPathError(f"unrecognized character in action: U+{ord(ch):04X} {ch!r}")

    def parse_identifier(self, cur: ListNode) -> None:
        while True:
            ch = self.next()
            if ch == "" or ch in _TERMINATORS:
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        if value in ("true", "false"):
            cur.nodes.append(LiteralNode(value == "true"))
        else:
            cur.nodes.append(IdentifierNode(value))

    def parse_recursive(self, cur: ListNode) -> None:
        if cur.nodes and isinstance(cur.nodes[-1], RecursiveNode):
            raise JSONPathError("invalid multiple recursive descent")
        self.pos += 2
        self.consume()
        cur.nodes.append(RecursiveNode())
        if _is_alnum(self.peek()):
            self.parse_field(cur)

    def parse_number(self, cur: ListNode) -> None:
        if self.peek() in ("+", "-") and self.peek():
            self.next()
        while True:
            ch = self.next()
            if (ch != "." and not ch.isdigit()) or ch == "":
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        if re.fullmatch(r"[+-]?[0-9]+", value):
            cur.nodes.append(LiteralNode(int(value)))
            return
        try:
            cur.nodes.append(LiteralNode(float(value)))
        except ValueError:
            raise JSONPathError(f"cannot parse number {value}") from None

    def parse_array(self, cur: ListNode) -> None:
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated array")
            if ch == "]":
                break
        text = self.consume()[1:-1]
        if text == "*":
            text = ":"
        parts = text.split(",")
        if len(parts) > 1:
            lists = tuple(parse_action(f"[{part.strip(' ')}]") for part in parts)
            cur.nodes.append(UnionNode(lists))
            return
        key = _DICT_KEY.match(text)
        if key is not None:
            cur.nodes.extend(parse_action(f".{key.group(1)}").nodes)
            return
        match = _SLICE.match(text)
        if match is None:
            raise JSONPathError(f"invalid array index {text}")
        groups = [match.group(1) or "", match.group(2) or "", match.group(3) or ""]
        params: list[ParamNode] = []
        for i, raw in enumerate(groups):
            if raw:
                digits = raw[1:] if i > 0 else raw
                if i > 0 and digits == "":
                    params.append(ParamNode())
                else:
                    try:
                        params.append(ParamNode(int(digits), known=True))
                    except ValueError:
                        raise JSONPathError(f"array index {digits} is not a number") from None
            elif i == 1:
                params.append(ParamNode(params[0].value + 1, known=True, derived=True))
            else:
                params.append(ParamNode())
        cur.nodes.append(ArrayNode((params[0], params[1], params[2])))

    def parse_filter(self, cur: ListNode) -> None:
        self.pos += 3
        self.consume()
        begin = end = False
        pair = ""
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated filter")
            if ch in ('"', "'"):
                if not begin:
                    begin, pair = True, ch
                    continue
                if self.input[self.pos - 2] != "\\" and ch == pair:
                    end = True
            elif ch == ")" and begin == end:
                break
        if self.next() != "]":
            raise JSONPathError("unclosed array expect ]")
        text = self.consume()[:-2]
        match = _FILTER.match(text)
        if match is None:
            cur.nodes.append(FilterNode(parse_action(text), ListNode(), "exists"))
        else:
            left = parse_action(match.group(1))
            right = parse_action(match.group(3))
            cur.nodes.append(FilterNode(left, right, match.group(2)))

    def parse_quote(self, cur: ListNode, end: str) -> None:
        while True:
            ch = self.next()
            if ch in ("", "\n"):
                raise JSONPathError("unterminated quoted string")
            if ch == end and self.input[self.pos - 2] != "\\":
                break
        value = self.consume()
        try:
            cur.nodes.append(TextNode(unquote_extend(value)))
        except ValueError as exc:
            raise JSONPathError(f"unquote string {value} error {exc}") from None

    def parse_field(self, cur: ListNode) -> None:
        self.consume()
        while True:
            ch = self.next()
            if ch == "\\":
                self.next()
            elif ch == "" or ch in _TERMINATORS:
                if ch:
                    self.pos -= 1
                break
        value = self.consume()
        if value == "*":
            cur.nodes.append(WildcardNode())
        else:
            cur.nodes.append(FieldNode(value.replace("\\", "")))


def parse_action(text: str) -> ListNode:
    root = Parser("{" + text + "}").parse()
    first = root.nodes[0]
    assert isinstance(first, ListNode)
    return first
