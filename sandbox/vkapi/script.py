"""The subset of VKScript the collector sends to ``execute``, parsed without eval.

Grammar: ``return EXPR;`` where EXPR is ``API.<method>(<JSON object>?)``, a list
``[EXPR, ...]`` or a JSON literal. Parameters are JSON (``json.JSONDecoder.raw_decode``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

MAX_API_CALLS = 25
MAX_DEPTH = 16

_METHOD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_$]")
_DECODER = json.JSONDecoder()


class ScriptError(ValueError):
    """Code outside the supported subset (VK error 12)."""


class TooManyCalls(ScriptError):
    """More than MAX_API_CALLS API calls (VK error 13)."""


@dataclass(frozen=True)
class ApiCall:
    """``API.<method>({params})``."""

    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class Literal:
    """A JSON literal."""

    value: Any


Node = ApiCall | Literal | list["Node"]


def parse(code: str, max_calls: int = MAX_API_CALLS) -> Node:
    """The expression after ``return``; ScriptError if malformed, TooManyCalls if too big."""
    parser = _Parser(code)
    node = parser.program()
    if parser.calls > max_calls:
        raise TooManyCalls(f"{parser.calls} API calls, at most {max_calls}")
    return node


def calls(node: Node) -> list[ApiCall]:
    """The API calls of a parsed expression, in order."""
    if isinstance(node, ApiCall):
        return [node]
    if isinstance(node, list):
        return [call for item in node for call in calls(item)]
    return []


def params_of(call: ApiCall) -> dict[str, str]:
    """The call's parameters as VK receives them over HTTP (strings, lists comma-joined)."""
    return {name: _to_param(value) for name, value in call.params.items() if value is not None}


def _to_param(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(_to_param(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class _Parser:
    def __init__(self, code: str) -> None:
        self.code = code
        self.pos = 0
        self.calls = 0
        self.depth = 0

    def program(self) -> Node:
        self._skip()
        if not self.code.startswith("return", self.pos) or self._word_char(self.pos + 6):
            raise ScriptError("expected 'return'")
        self.pos += len("return")
        node = self._expression()
        self._skip()
        if self._peek() == ";":
            self.pos += 1
            self._skip()
        if self.pos != len(self.code):
            raise ScriptError(f"unexpected text at {self.pos}")
        return node

    def _expression(self) -> Node:
        self._skip()
        if self._peek() == "[":
            return self._list()
        if self.code.startswith("API.", self.pos):
            return self._call()
        return Literal(self._json())

    def _list(self) -> list[Node]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ScriptError("lists nested too deep")
        self.pos += 1
        items: list[Node] = []
        self._skip()
        if self._peek() == "]":
            self.pos += 1
            self.depth -= 1
            return items
        while True:
            items.append(self._expression())
            self._skip()
            char = self._peek()
            self.pos += 1
            if char == "]":
                self.depth -= 1
                return items
            if char != ",":
                raise ScriptError(f"expected ',' or ']' at {self.pos - 1}")

    def _call(self) -> ApiCall:
        self.pos += len("API.")
        match = _METHOD.match(self.code, self.pos)
        if match is None:
            raise ScriptError(f"expected a method name at {self.pos}")
        self.pos = match.end()
        self._skip()
        self._expect("(")
        self._skip()
        params: Any = {}
        if self._peek() != ")":
            params = self._json()
            if not isinstance(params, dict):
                raise ScriptError("API call parameters must be an object")
            self._skip()
        self._expect(")")
        self.calls += 1
        return ApiCall(match.group(), params)

    def _json(self) -> Any:
        try:
            value, self.pos = _DECODER.raw_decode(self.code, self.pos)
        except json.JSONDecodeError as exc:
            raise ScriptError(f"bad JSON at {self.pos}: {exc.msg}") from None
        except RecursionError:
            raise ScriptError("JSON nested too deep") from None
        return value

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ScriptError(f"expected {char!r} at {self.pos}")
        self.pos += 1

    def _peek(self) -> str:
        return self.code[self.pos] if self.pos < len(self.code) else ""

    def _skip(self) -> None:
        while self.pos < len(self.code) and self.code[self.pos].isspace():
            self.pos += 1

    def _word_char(self, pos: int) -> bool:
        return pos < len(self.code) and _WORD_CHAR.match(self.code[pos]) is not None
