"""How Fusion's REST framework reads a collection: `q` expressions (`Attr op value` clauses joined with `and`,
single-quoted literals with '' for a quote, `like` with % and _), `finder=Name;var=value,...`, and the
`limit`/`offset` paging arguments, plus `Collection`, one resource with its queryable attributes and rows.
Nothing here holds server state."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from mocks.server import MockError, MockRequest

API_PREFIX = "/fscmRestApi/resources/"
VERSIONS = ("11.13.18.05", "latest")
MAX_LIMIT = 500
DEFAULT_LIMIT = 25

_Q_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<op><=|>=|!=|=|<|>)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<bare>[^\s'<>=!]+)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    attr: str
    op: str
    value: str


def parse_q(text: str) -> list[Clause]:
    """Parse `Attr op 'value' and Attr2 op value` (REST framework V2+ expressions). Literals are single-quoted with
    '' standing for one quote, or bare (numbers, dates). Raises MockError 400 on anything else."""
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _Q_TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise MockError(400, f"The q parameter is not a valid expression near position {pos}: {text!r}.")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1

    def bad(why: str) -> MockError:
        return MockError(400, f"The q parameter {text!r} is not valid: {why}.")

    clauses: list[Clause] = []
    i = 0
    while True:
        if i + 3 > len(tokens):
            raise bad("expected <attribute> <operator> <value>")
        (k1, attr), (k2, op), (k3, value) = tokens[i], tokens[i + 1], tokens[i + 2]
        if k1 != "word" or attr.lower() in ("and", "or"):
            raise bad(f"expected an attribute, got {attr!r}")
        if k2 == "word" and op.lower() == "like":
            op = "like"
        elif k2 != "op":
            raise bad(f"expected an operator after {attr}, got {op!r}")
        if k3 == "string":
            value = value[1:-1].replace("''", "'")
        elif k3 not in ("bare", "word"):
            raise bad(f"expected a value after {attr} {op}")
        clauses.append(Clause(attr, op, value))
        i += 3
        if i == len(tokens):
            return clauses
        joiner = tokens[i][1].lower()
        if tokens[i][0] != "word" or joiner != "and":
            raise bad(f"expected 'and' between conditions, got {tokens[i][1]!r}")
        i += 1


def _as_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def compare(actual: Any, op: str, literal: str) -> bool:
    """Does a row's value satisfy one q clause? Numbers compare as numbers, timestamps as instants, booleans
    case-insensitively, the rest as text; an empty value matches nothing."""
    if actual is None:
        return False
    if op == "like":
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in literal)
        return re.fullmatch(pattern, str(actual), re.DOTALL) is not None
    left: Any
    right: Any
    if isinstance(actual, bool):
        left, right = str(actual).lower(), literal.lower()
    elif isinstance(actual, int | float | Decimal):
        try:
            left, right = Decimal(str(actual)), Decimal(literal)
        except InvalidOperation:
            raise MockError(400, f"The value {literal!r} is not a number.") from None
    elif isinstance(actual, str) and "T" in actual and _as_datetime(actual) and _as_datetime(literal):
        left, right = _as_datetime(actual), _as_datetime(literal)
    else:
        left, right = str(actual), literal
    return {
        "=": left == right,
        "!=": left != right,
        "<": left < right,
        ">": left > right,
        "<=": left <= right,
        ">=": left >= right,
    }[op]


def parse_finder(text: str) -> tuple[str, dict[str, str]]:
    """`Name;var=value,var2="value, with comma"` -> ("Name", {...})."""
    name, _, rest = text.partition(";")
    variables: dict[str, str] = {}
    for part in re.findall(r'(?:[^,"]|"[^"]*")+', rest):
        var, sep, value = part.partition("=")
        if not sep:
            raise MockError(400, f"The finder {text!r} is not valid: expected var=value.")
        variables[var.strip()] = value.strip().strip('"')
    return name.strip(), variables


@dataclass
class Collection:
    """One REST resource: its key, the attributes a client may query, order by and send, and its rows."""

    name: str
    key: str
    attributes: tuple[str, ...]
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: tuple[str, ...] = ()

    def check_attribute(self, attr: str) -> None:
        if attr not in self.attributes:
            raise MockError(400, f"The attribute {attr} is not found in the resource {self.name}.")


def int_arg(request: MockRequest, name: str, default: int) -> int:
    """A non-negative whole-number URL parameter such as limit or offset."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MockError(400, f"The URL parameter {name} with value {raw!r} is not a number.") from None
    if value < 0:
        raise MockError(400, f"The URL parameter {name} must not be negative.")
    return value


def decimal_or_none(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def attribute_key(attr: str) -> Callable[[dict[str, Any]], Any]:
    """The orderBy sort key of an attribute: empty values last, numbers by value, the rest as text."""
    return lambda row: (row.get(attr) is None, _sort_key(row.get(attr)))


def _sort_key(value: Any) -> Any:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return (0, Decimal(str(value)), "")
    return (1, Decimal(0), str(value))
