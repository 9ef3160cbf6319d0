"""expr-lang's lexer (parser/lexer of v1.17.8), ported rule for rule: one pass over the
source into lexemes; errors carry line and column. The parser (parser.py) reads them."""

from __future__ import annotations

from dataclasses import dataclass

from analysisd.expr.errors import ExprSyntaxError

__all__ = ["KEYWORDS", "Lexeme", "Lexer", "position"]

KEYWORDS = frozenset(
    {"not", "in", "or", "and", "matches", "contains", "startsWith", "endsWith", "let"}
)


@dataclass(slots=True)
class Lexeme:
    kind: str  # number, string, ident, op, bracket, eof
    value: str
    offset: int
    line: int
    column: int


def _alnum(char: str) -> bool:
    return char == "_" or char == "$" or char.isalpha() or char.isdigit()


class Lexer:
    """parser/lexer: one pass over the source into lexemes (errors carry line and column)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.tokens: list[Lexeme] = []

    def error(self, message: str, offset: int) -> ExprSyntaxError:
        line, column = position(self.source, offset)
        return ExprSyntaxError(message, source=self.source, column=column, line=line)

    def emit(self, kind: str, start: int) -> None:
        line, column = position(self.source, start)
        self.tokens.append(Lexeme(kind, self.source[start : self.pos], start, line, column))

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.source[index] if index < len(self.source) else ""

    def accept(self, chars: str) -> bool:
        char = self.peek()
        if char and char in chars:
            self.pos += 1
            return True
        return False

    def accept_run(self, chars: str) -> None:
        while self.accept(chars):
            pass

    def lex(self) -> list[Lexeme]:
        src = self.source
        while self.pos < len(src):
            start = self.pos
            char = src[self.pos]
            if char in " \t\r\n":
                self.pos += 1
            elif (char.isdigit() and char.isascii()) or (
                char == "." and self.peek(1).isdigit() and self.peek(1).isascii()
            ):
                self.number(start)
            elif char in "\"'":
                self.quoted(start, char)
            elif char == "`":
                end = src.find("`", start + 1)
                if end < 0:
                    raise self.error("literal not terminated", start)
                self.pos = end + 1
                self.emit("string", start)
            elif char == "/":
                self.slash(start)
            elif char == "?":
                self.pos += 1
                if self.peek() == "." and not (self.peek(1).isdigit() and self.peek(1).isascii()):
                    self.pos += 1
                else:
                    self.accept("?")
                self.emit("op", start)
            elif char == "#":
                self.pos += 1
                self.emit("op", start)
            elif char == "|":
                self.pos += 1
                self.accept("|")
                self.emit("op", start)
            elif char == ":":
                self.pos += 1
                self.accept(":")
                self.emit("op", start)
            elif char in "([{)]}":
                self.pos += 1
                self.emit("bracket", start)
            elif char in ",;%+-^":
                self.pos += 1
                self.emit("op", start)
            elif char in "&!=*<>":
                self.pos += 1
                self.accept("&=*")
                self.emit("op", start)
            elif char == ".":
                self.pos += 1
                self.accept(".")
                self.emit("op", start)
            elif _alnum(char):
                while self.pos < len(src) and _alnum(src[self.pos]):
                    self.pos += 1
                word = src[start : self.pos]
                self.emit("op" if word in KEYWORDS else "ident", start)
            else:
                raise self.error(f"unrecognized character: U+{ord(char):04X} {char!r}", start)
        self.tokens.append(Lexeme("eof", "", len(src), *position(src, len(src))))
        return self.tokens

    def number(self, start: int) -> None:
        digits = "0123456789_"
        if self.accept("0"):
            if self.accept("xX"):
                digits = "0123456789abcdefABCDEF_"
            elif self.accept("oO"):
                digits = "01234567_"
            elif self.accept("bB"):
                digits = "01_"
        self.accept_run(digits)
        end = self.pos
        if self.accept("."):
            if self.peek() == ".":  # a range: 1..2
                self.pos = end
                self.emit("number", start)
                return
            self.accept_run(digits)
        if self.accept("eE"):
            self.accept("+-")
            self.accept_run(digits)
        if self.peek() and _alnum(self.peek()):
            self.pos += 1
            raise self.error(f"bad number syntax: {self.source[start : self.pos]!r}", start)
        self.emit("number", start)

    def quoted(self, start: int, quote: str) -> None:
        src = self.source
        index = start + 1
        while index < len(src):
            char = src[index]
            if char == "\\":
                index += 2
                continue
            if char == "\n":
                break
            if char == quote:
                self.pos = index + 1
                self.emit("string", start)
                return
            index += 1
        raise self.error("literal not terminated", start)

    def slash(self, start: int) -> None:
        self.pos += 1
        if self.accept("/"):
            end = self.source.find("\n", self.pos)
            self.pos = len(self.source) if end < 0 else end
            return
        if self.accept("*"):
            end = self.source.find("*/", self.pos)
            if end < 0:
                raise self.error("unclosed comment", start)
            self.pos = end + 2
            return
        self.emit("op", start)


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of an offset."""
    line = source.count("\n", 0, offset) + 1
    return line, offset - (source.rfind("\n", 0, offset) + 1) + 1
