"""Protobuf text format (a Caffe .prototxt), read by its syntax alone, every byte's place kept.

protobuf's text_format needs the schema, and a fork's net holds fields the local caffe.proto
does not know (focal_loss_param, ...), so this reads the grammar only:

    text     := entry*
    entry    := NAME ( ":" value | ":"? message | ":"? "[" items? "]" ) (";" | ",")?
    message  := "{" entry* "}"  |  "<" entry* ">"
    items    := item ("," item)*        item := scalar | message
    value    := scalar | message
    scalar   := STRING STRING* | "-"? NUMBER | "-"? IDENTIFIER
    NAME     := identifier [A-Za-z_][A-Za-z0-9_]*
    STRING   := "..." or '...' on one line; escapes \\a \\b \\f \\n \\r \\t \\v \\\\ \\? \\' \\" \\ooo
                \\xHH \\uHHHH \\UHHHHHHHH; adjacent strings are one value (concatenated)
    NUMBER   := 123, 0x1F, 017 (octal), 1.5, .5, 1e-3, 2.f (an f/F suffix: a float)
    comment  := "#" to the end of the line

Every Entry, Message, ListValue and Scalar knows its [start, end) offsets in the text, so a
caller can replace one entry and leave every other byte as it was. Nothing is evaluated.
Errors are PrototxtSyntaxError, naming the 1-based line and column.
"""
import re
from dataclasses import dataclass
from typing import List, Optional, Union

# A bound on nesting (Caffe's nets nest a few levels), so that a pathological file gets a
# PrototxtSyntaxError rather than Python's RecursionError.
MAX_DEPTH = 100

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A number as protobuf's tokenizer reads one; the trailing [A-Za-z0-9_.]* catches "12abc" and
# "1.2.3", which must be errors rather than two tokens.
_NUMBER = re.compile(r"(?:0[xX][0-9A-Fa-f]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?)"
                     r"[A-Za-z0-9_.]*")
_VALID_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fF]?")
_SYMBOLS = "{}<>[]:;,-"
_DIGITS = "0123456789"
_IDENT_START = "_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SIMPLE_ESCAPES = {"a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t",
                   "v": b"\v", "\\": b"\\", "?": b"?", "'": b"'", '"': b'"'}
_CLOSING = {"{": "}", "<": ">"}


class PrototxtSyntaxError(ValueError):
    """The text is not protobuf text format; line and column are 1-based."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(f"line {line}, column {column}: {message}")
        self.message, self.line, self.column = message, line, column


@dataclass
class Token:
    kind: str    # "identifier", "number", "string" or "symbol"
    text: str    # as written (a string token with its quotes)
    start: int
    end: int


@dataclass
class Scalar:
    """One value: kind "string" (adjacent literals joined), "number" or "identifier" (an enum
    name, true/false, inf, nan), with "-" in front of a number or identifier included."""
    kind: str
    tokens: List[Token]
    start: int
    end: int

    @property
    def text(self) -> str:
        """The source text of a number or identifier (with its "-"), e.g. "-1.5", "VALID"."""
        return "".join(t.text for t in self.tokens)

    def value(self):
        """str for strings (escapes decoded) and identifiers; int or float for numbers."""
        if self.kind == "string":
            return "".join(decode_string(t.text) for t in self.tokens)
        if self.kind == "number":
            return parse_number(self.text)
        return self.text


@dataclass
class Message:
    """A { ... } or < ... > block (start: its opening brace, end: after its closing one), or
    the whole text (start 0, end len(text))."""
    entries: List["Entry"]
    start: int
    end: int

    def all(self, name: str) -> List["Entry"]:
        return [e for e in self.entries if e.name == name]

    def first(self, name: str) -> Optional["Entry"]:
        found = self.all(name)
        return found[0] if found else None


@dataclass
class ListValue:
    """name: [a, b, ...] (start: "[", end: after "]")."""
    items: List[Union[Scalar, Message]]
    start: int
    end: int


@dataclass
class Entry:
    """name: value. start: the name; end: after the value and its ";" or "," if it has one."""
    name: str
    value: Union[Scalar, Message, ListValue]
    start: int
    end: int


def line_column(text: str, offset: int):
    """1-based (line, column) of text[offset]."""
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def tokenize(text: str) -> List[Token]:
    """The tokens of text, without whitespace and comments."""
    tokens, n = [], len(text)
    i = 1 if text.startswith("\ufeff") else 0     # a byte-order mark some editors write
    while i < n:
        c = text[i]
        if c in " \t\r\n\f\v":
            i += 1
        elif c == "#":
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif c == '"' or c == "'":
            end = _string_end(text, i)
            tokens.append(Token("string", text[i:end], i, end))
            i = end
        elif c in _DIGITS or (c == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER.match(text, i)
            if not _VALID_NUMBER.fullmatch(m.group()):
                raise _error(text, i, f"malformed number {m.group()!r}")
            tokens.append(Token("number", m.group(), i, m.end()))
            i = m.end()
        elif c in _IDENT_START:     # ASCII only, as protobuf's: "é" is an unexpected character
            m = _IDENT.match(text, i)
            tokens.append(Token("identifier", m.group(), i, m.end()))
            i = m.end()
        elif c in _SYMBOLS:
            tokens.append(Token("symbol", c, i, i + 1))
            i += 1
        else:
            raise _error(text, i, f"unexpected character {c!r}")
    return tokens


def _string_end(text: str, i: int) -> int:
    """Offset after the string literal opening at text[i]; checks its escapes."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n:
        c = text[j]
        if c == quote:
            return j + 1
        if c == "\n":
            break
        if c == "\\":
            j = _escape_end(text, j)
        else:
            j += 1
    raise _error(text, i, "string literal not closed on its line")


def _escape_end(text: str, j: int) -> int:
    """Offset after the escape sequence at text[j] (a backslash)."""
    rest = text[j + 1:j + 10]
    m = re.match(r"[abfnrtv\\?'\"]|x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[0-7]{1,3}", rest)
    if m is None:
        shown = rest[:1] if rest[:1] not in ("", "\n") else ""
        raise _error(text, j, f"invalid escape sequence \\{shown} in string literal")
    if m.group()[0] == "U" and int(m.group()[1:], 16) > 0x10FFFF:
        raise _error(text, j, f"\\{m.group()} is beyond Unicode's last code point")
    return j + 1 + m.end()


def decode_string(literal: str) -> str:
    """The value of one string token (with its quotes). Escapes give bytes, read as UTF-8 (bytes
    that are not UTF-8 are kept as surrogates, as Python's surrogateescape does)."""
    body, out, i = literal[1:-1], bytearray(), 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        e = body[i + 1]
        if e in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[e]
            i += 2
        elif e == "x":
            m = re.match(r"[0-9A-Fa-f]{1,2}", body[i + 2:])
            out.append(int(m.group(), 16))
            i += 2 + len(m.group())
        elif e in "uU":
            digits = 4 if e == "u" else 8
            out += chr(int(body[i + 2:i + 2 + digits], 16)).encode("utf-8", "surrogatepass")
            i += 2 + digits
        else:
            m = re.match(r"[0-7]{1,3}", body[i + 1:])
            out.append(int(m.group(), 8) & 0xFF)
            i += 1 + len(m.group())
    return out.decode("utf-8", "surrogateescape")


def quote_string(value: str, quote: str = "'") -> str:
    """value as a string literal in `quote`s that decode_string (and protobuf) read back as
    value: backslash, the quote and control characters escaped, other text kept as it is."""
    out = []
    for c in value:
        if c == "\\" or c == quote:
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\{ord(c):03o}")
        else:
            out.append(c)
    return quote + "".join(out) + quote


def parse_number(text: str):
    """int or float of a number's source text (a leading "-" allowed)."""
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text)
    if body[:2] in ("0x", "0X"):
        return sign * int(body, 16)
    if body.isdigit():
        # protobuf reads 017 as octal 15
        return sign * (int(body, 8) if len(body) > 1 and body[0] == "0" else int(body))
    return sign * float(body.rstrip("fF"))


def parse(text: str) -> Message:
    """The whole text as a Message of its top-level entries; PrototxtSyntaxError if it is not
    protobuf text format."""
    parser = _Parser(text)
    entries = parser.entries(closing=None, depth=0)
    return Message(entries, 0, len(text))


def top_level_layers(root: Message) -> List[Entry]:
    """The net's `layer { ... }` and old-style `layers { ... }` entries, in file order."""
    return [e for e in root.entries if e.name in ("layer", "layers") and isinstance(e.value, Message)]


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def peek(self) -> Optional[Token]:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _error(self.text, len(self.text), "unexpected end of text")
        self.i += 1
        return token

    def at(self, symbol: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "symbol" and token.text == symbol

    def fail(self, message: str, token: Optional[Token] = None):
        token = token or self.peek()
        offset = token.start if token is not None else len(self.text)
        found = f"{token.text!r}" if token is not None else "the end of the text"
        raise _error(self.text, offset, f"{message}, found {found}")

    def entries(self, closing: Optional[str], depth: int) -> List[Entry]:
        found = []
        while True:
            token = self.peek()
            if token is None:
                if closing is not None:
                    self.fail(f"expected a field name or {closing!r}")
                return found
            if closing is not None and self.at(closing):
                return found
            found.append(self.entry(depth))

    def entry(self, depth: int) -> Entry:
        name = self.take()
        if name.kind != "identifier":
            self.fail("expected a field name", name)
        colon = self.at(":")
        if colon:
            self.take()
        if self.at("{") or self.at("<"):
            value = self.message(depth + 1)
        elif self.at("["):
            value = self.list_value(depth + 1)
        elif colon:
            value = self.scalar()
        else:
            self.fail(f"expected ':' or '{{' after field name {name.text!r}")
        end = value.end
        if self.at(";") or self.at(","):
            end = self.take().end
        return Entry(name.text, value, name.start, end)

    def message(self, depth: int) -> Message:
        if depth > MAX_DEPTH:
            self.fail(f"messages nested deeper than {MAX_DEPTH}")
        opening = self.take()
        closing = _CLOSING[opening.text]
        entries = self.entries(closing, depth)
        close = self.take()
        return Message(entries, opening.start, close.end)

    def list_value(self, depth: int) -> ListValue:
        opening = self.take()
        items = []
        if not self.at("]"):
            while True:
                items.append(self.message(depth + 1) if self.at("{") or self.at("<") else self.scalar())
                if self.at(","):
                    self.take()
                    continue
                break
        if not self.at("]"):
            self.fail("expected ',' or ']' in a list")
        close = self.take()
        return ListValue(items, opening.start, close.end)

    def scalar(self) -> Scalar:
        token = self.peek()
        if token is not None and token.kind == "string":
            strings = []
            while self.peek() is not None and self.peek().kind == "string":
                strings.append(self.take())
            return Scalar("string", strings, strings[0].start, strings[-1].end)
        tokens = []
        if self.at("-"):
            tokens.append(self.take())
        token = self.peek()
        if token is None or token.kind not in ("number", "identifier"):
            self.fail("expected a value (a string, number or name)")
        tokens.append(self.take())
        return Scalar(token.kind, tokens, tokens[0].start, tokens[-1].end)


def _error(text: str, offset: int, message: str) -> PrototxtSyntaxError:
    line, column = line_column(text, offset)
    return PrototxtSyntaxError(message, line, column)
