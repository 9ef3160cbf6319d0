"""The parse tree's values: ``Tree``, ``Token`` and ``Meta``, shaped as lark's.

The parser (parser.py, expr-lang's own precedence climbing) used to build lark's
``Tree`` and ``Token`` and nothing else of lark; importing lark for them (and the ``regex``
module lark loads) cost 25-30 ms of `analysisd lint`'s start-up (issue 21).
These keep the members the compiler and the checker read, with lark's meaning: a
``Token`` is the ``str`` of its value with ``type``, ``line`` and ``column``; a ``Tree``
is ``data`` and ``children``, equal to another of the same data and children; its
``meta`` (line and column, ``empty`` when unknown) is made on first reading.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

_Leaf = TypeVar("_Leaf")


class Meta:
    """Where a node starts (``line``, ``column``, 1-based); ``empty`` until they are set."""

    empty: bool
    line: int
    column: int

    def __init__(self) -> None:
        self.empty = True


class Token(str):
    """A lexeme: the ``str`` of its value, with its kind (``type``) and position."""

    __slots__ = (
        "column",
        "end_column",
        "end_line",
        "end_pos",
        "line",
        "start_pos",
        "type",
        "value",
    )

    __match_args__ = ("type", "value")

    type: str
    value: Any
    start_pos: int | None
    line: int | None
    column: int | None
    end_line: int | None
    end_column: int | None
    end_pos: int | None

    def __new__(
        cls,
        type: str,
        value: Any,
        start_pos: int | None = None,
        line: int | None = None,
        column: int | None = None,
        end_line: int | None = None,
        end_column: int | None = None,
        end_pos: int | None = None,
    ) -> Token:
        token = super().__new__(cls, value)
        token.type = type
        token.value = value
        token.start_pos = start_pos
        token.line = line
        token.column = column
        token.end_line = end_line
        token.end_column = end_column
        token.end_pos = end_pos
        return token

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        fields = (self.start_pos, self.line, self.column, self.end_line, self.end_column)
        return (self.__class__, (self.type, self.value, *fields, self.end_pos))

    def __eq__(self, other: object) -> bool:
        # lark's rule: the same text, and the same kind when both are tokens.
        if isinstance(other, Token) and self.type != other.type:
            return False
        return str.__eq__(self, other)

    __hash__ = str.__hash__


class Tree(Generic[_Leaf]):
    """A node: its rule name (``data``) and its children (trees, tokens or None)."""

    __slots__ = ("_meta", "children", "data")

    def __init__(
        self, data: str, children: list[Tree[_Leaf] | _Leaf], meta: Meta | None = None
    ) -> None:
        self.data = data
        self.children = children
        self._meta = meta

    @property
    def meta(self) -> Meta:
        if self._meta is None:
            self._meta = Meta()
        return self._meta

    def __repr__(self) -> str:
        return f"Tree({self.data!r}, {self.children!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tree):
            return False
        return self.data == other.data and self.children == other.children

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self.data, tuple(self.children)))
