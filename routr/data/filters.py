"""List filters: the JsonPath predicate subset Routr v1 accepted.

``@.spec.credentials.username == '1001' && @.metadata.name =~ /John.*/i``; operators
``== != =~ in < <= > >= && ||``, parentheses, strings, numbers, true/false/null, lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .errors import InvalidFilter

Predicate = Callable[[Any], bool]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<path>@(?:\.[A-Za-z_$][\w$-]*|\[\d+\]|\['[^']*'\])*)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<regex>/(?:[^/\\]|\\.)+/[imsx]*)
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<word>true|false|null|in|nin)\b
    | (?P<op>==|!=|=~|<=|>=|<|>|&&|\|\||[()\[\],])
    )""",
    re.VERBOSE,
)
_PATH_PART = re.compile(r"\.([A-Za-z_$][\w$-]*)|\[(\d+)\]|\['([^']*)'\]")
_MISSING = object()
_CONSTANTS = {"true": True, "false": False, "null": None}


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InvalidFilter(f"filter: cannot read {text[pos : pos + 20]!r}")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _resolve(path: str, obj: Any) -> Any:
    for attr, index, quoted in _PATH_PART.findall(path):
        key: Any = int(index) if index else (attr or quoted)
        if (isinstance(obj, dict) and not isinstance(key, int) and key in obj) or (
            isinstance(obj, list) and isinstance(key, int) and key < len(obj)
        ):
            obj = obj[key]
        else:
            return _MISSING
    return obj


def _same(a: Any, b: Any) -> bool:
    # a number written unquoted matches the string form Routr keeps (username: 1001)
    if isinstance(a, str) != isinstance(b, str) and not isinstance(a, bool | None):
        return str(a) == str(b)
    return bool(a == b)


def _order(op: str, a: Any, b: Any) -> bool:
    try:
        if op == "<":
            return bool(a < b)
        if op == "<=":
            return bool(a <= b)
        if op == ">":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def _matches(a: Any, pattern: re.Pattern[str]) -> bool:
    return isinstance(a, str) and pattern.fullmatch(a) is not None


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise InvalidFilter(f"filter: expected {value or 'more'} at token {self.pos + 1}")
        self.pos += 1
        return tok

    def parse(self) -> Predicate:
        pred = self.disjunction()
        if self.peek() is not None:
            raise InvalidFilter(f"filter: unexpected {self.peek()[1]!r}")  # type: ignore[index]
        return pred

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == ("op", "||"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda o: any(p(o) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.comparison()]
        while self.peek() == ("op", "&&"):
            self.take()
            parts.append(self.comparison())
        return parts[0] if len(parts) == 1 else (lambda o: all(p(o) for p in parts))

    def comparison(self) -> Predicate:
        if self.peek() == ("op", "("):
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        left = self.operand()
        tok = self.peek()
        if tok is None or tok[1] not in ("==", "!=", "=~", "<", "<=", ">", ">=", "in", "nin"):
            return lambda o: left(o) not in (_MISSING, None, False)
        op = self.take()[1]
        if op == "=~":
            pattern = self.regex()
            return lambda o: _matches(left(o), pattern)
        right = self.operand()

        def test(o: Any) -> bool:
            a, b = left(o), right(o)
            if a is _MISSING or b is _MISSING:
                return False
            if op == "==":
                return _same(a, b)
            if op == "!=":
                return not _same(a, b)
            if op in ("in", "nin"):
                found = isinstance(b, list) and any(_same(a, x) for x in b)
                return found if op == "in" else not found
            return _order(op, a, b)

        return test

    def regex(self) -> re.Pattern[str]:
        kind, text = self.take()
        flags = 0
        if kind == "regex":
            body, _, letters = text[1:].rpartition("/")
            for letter in letters:
                flags |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[letter]
        elif kind == "str":
            body = _unquote(text)
        else:
            raise InvalidFilter("filter: =~ needs /regex/ or a string")
        try:
            return re.compile(body, flags)
        except re.error as exc:
            raise InvalidFilter(f"filter: bad regular expression: {exc}") from None

    def operand(self) -> Callable[[Any], Any]:
        kind, text = self.take()
        if kind == "path":
            return lambda o: _resolve(text, o)
        if kind == "op" and text == "[":
            items: list[Callable[[Any], Any]] = []
            while self.peek() != ("op", "]"):
                items.append(self.operand())
                if self.peek() == ("op", ","):
                    self.take()
            self.take("]")
            return lambda o: [f(o) for f in items]
        value = _literal(kind, text)
        return lambda _o: value


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def _literal(kind: str, text: str) -> Any:
    if kind == "str":
        return _unquote(text)
    if kind == "num":
        return float(text) if "." in text else int(text)
    if kind == "word" and text in _CONSTANTS:
        return _CONSTANTS[text]
    raise InvalidFilter(f"filter: unexpected {text!r}")


def compile_filter(text: str | None) -> Predicate:
    """A predicate over a resource's JSON dict. Empty, ``*`` or None match everything.

    v1's wrapping ``*.[?( ... )]`` or ``[?( ... )]`` is accepted and ignored.
    """
    text = (text or "").strip()
    wrapped = re.fullmatch(r"(?:\*\.)?\[\?\((.*)\)\]", text, re.S)
    if wrapped:
        text = wrapped.group(1).strip()
    if text in ("", "*"):
        return lambda _o: True
    return _Parser(text).parse()
