import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusion.query import fields_param, order_by, q_expr

# A reference reader of the V2+ expression grammar q_expr emits: Attr op 'literal' [and ...], where a quote inside
# a literal is written twice. It stands for Fusion's parser: a value must come back as exactly one literal.
_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.]*)\s+(=|!=|<=|>=|<|>|like)\s+'((?:[^']|'')*)'\s*")


def parse(expr: str) -> list[tuple[str, str, str]]:
    clauses, pos = [], 0
    while True:
        match = _TOKEN.match(expr, pos)
        assert match, f"unparsable at {pos}: {expr[pos:]!r}"
        clauses.append((match.group(1), match.group(2), match.group(3).replace("''", "'")))
        pos = match.end()
        if pos == len(expr):
            return clauses
        assert expr.startswith("and ", pos), f"expected 'and' at {pos}: {expr[pos:]!r}"
        pos += 4


def test_q_expr_joins_clauses_with_and_and_quotes_every_value():
    expr = q_expr(("TransactionNumber", "=", "MAG-000012345"), ("BusinessUnit", "=", "Vision Operations"))
    assert expr == "TransactionNumber = 'MAG-000012345' and BusinessUnit = 'Vision Operations'"


def test_injection_attempt_stays_one_literal():
    hostile = "x' or TransactionNumber!='"
    expr = q_expr(("TransactionNumber", "=", hostile), ("TransactionSource", "=", "COMMERCE_WEB"))
    assert expr == ("TransactionNumber = 'x'' or TransactionNumber!=''' and TransactionSource = 'COMMERCE_WEB'")
    assert parse(expr) == [
        ("TransactionNumber", "=", hostile),
        ("TransactionSource", "=", "COMMERCE_WEB"),
    ]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))))
def test_any_printable_value_round_trips_as_a_single_literal(value):
    assert parse(q_expr(("CustomerName", "=", value))) == [("CustomerName", "=", value)]


def test_dates_and_numbers_are_quoted_literals_with_offsets():
    when = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    paris = datetime(2026, 11, 1, 13, 30, tzinfo=timezone(timedelta(hours=1)))
    expr = q_expr(
        ("LastUpdateDate", ">", when),
        ("LastUpdateDate", "<=", paris),
        ("TransactionDate", "=", date(2026, 11, 1)),
        ("CustomerTransactionId", "=", 300100170996427),
        ("Amount", ">=", Decimal("10.50")),
    )
    assert expr == (
        "LastUpdateDate > '2026-11-01T12:30:00+00:00' and LastUpdateDate <= '2026-11-01T13:30:00+01:00' and "
        "TransactionDate = '2026-11-01' and CustomerTransactionId = '300100170996427' and Amount >= '10.50'"
    )


def test_like_operator_is_allowed_and_normalised():
    assert q_expr(("names.FirstName", "LIKE", "%Ki%")) == "names.FirstName like '%Ki%'"


@pytest.mark.parametrize("op", ["or", ";", "= '' or 1", "in", "", "==", "<>"])
def test_operators_outside_the_allow_list_are_refused(op):
    with pytest.raises(ValueError, match="operator"):
        q_expr(("TransactionNumber", op, "x"))


@pytest.mark.parametrize(
    "attr", ["Transaction Number", "TransactionNumber='x' or X", "1abc", "", "a;b", "a..b", "Name)", "Name'"]
)
def test_attribute_names_must_be_identifiers(attr):
    with pytest.raises(ValueError, match="attribute"):
        q_expr((attr, "=", "x"))


@pytest.mark.parametrize("value", [None, True, datetime(2026, 1, 1), "line\nbreak", "nul\x00", object()])
def test_unsafe_or_ambiguous_values_are_refused(value):
    with pytest.raises(ValueError):
        q_expr(("TransactionNumber", "=", value))


def test_an_empty_expression_is_refused():
    with pytest.raises(ValueError):
        q_expr()


def test_order_by_and_fields_are_validated():
    assert order_by("LastUpdateDate, CustomerTransactionId:desc") == "LastUpdateDate,CustomerTransactionId:desc"
    assert fields_param("TransactionNumber;receivablesInvoiceLines:LineNumber,Quantity") == (
        "TransactionNumber;receivablesInvoiceLines:LineNumber,Quantity"
    )
    for bad in ("", "A:sideways", "A,B'", "A&limit=1"):
        with pytest.raises(ValueError):
            order_by(bad)
    for bad in ("", "A,,B", "A&x=1", "A:B:C"):
        with pytest.raises(ValueError):
            fields_param(bad)
