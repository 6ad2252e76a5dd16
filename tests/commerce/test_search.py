from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from commerce.search import MAX_PAGE_SIZE, SearchCriteria

F = "searchCriteria[filter_groups]"


def test_updated_since_search_becomes_flat_query_parameters():
    since = datetime(2026, 11, 1, 13, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    params = (
        SearchCriteria()
        .where("updated_at", since, "gteq")
        .order_by("updated_at")
        .order_by("entity_id", "asc")
        .page(2, size=300)
        .to_params()
    )
    assert params == {
        f"{F}[0][filters][0][field]": "updated_at",
        f"{F}[0][filters][0][value]": "2026-11-01 12:00:05",  # UTC, as Commerce stores it
        f"{F}[0][filters][0][condition_type]": "gteq",
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[sortOrders][1][field]": "entity_id",
        "searchCriteria[sortOrders][1][direction]": "ASC",
        "searchCriteria[pageSize]": "300",
        "searchCriteria[currentPage]": "2",
    }


def test_groups_are_anded_and_filters_in_a_group_are_ored():
    params = (
        SearchCriteria()
        .where_any([("status", "processing", "eq"), ("status", "complete", "eq")])
        .where("store_id", 1)
        .to_params()
    )
    assert params[f"{F}[0][filters][0][value]"] == "processing"
    assert params[f"{F}[0][filters][1][value]"] == "complete"
    assert params[f"{F}[1][filters][0][field]"] == "store_id"
    assert params[f"{F}[1][filters][0][value]"] == "1"
    assert params[f"{F}[1][filters][0][condition_type]"] == "eq"


def test_list_conditions_join_values_and_other_values_are_plain_text():
    params = (
        SearchCriteria()
        .where("entity_id", [1, 2, 3], "in")
        .where("created_at", date(2026, 1, 31), "lteq")
        .where("grand_total", Decimal("10.50"), "gt")
        .to_params()
    )
    assert params[f"{F}[0][filters][0][value]"] == "1,2,3"
    assert params[f"{F}[1][filters][0][value]"] == "2026-01-31"
    assert params[f"{F}[2][filters][0][value]"] == "10.50"


def test_builder_is_immutable_so_paging_does_not_change_the_base():
    base = SearchCriteria(page_size=50).where("updated_at", datetime(2026, 1, 1, tzinfo=UTC), "gteq")
    second = base.page(2)
    assert base.to_params()["searchCriteria[currentPage]"] == "1"
    assert second.to_params()["searchCriteria[currentPage]"] == "2"
    assert second.to_params()["searchCriteria[pageSize]"] == "50"


@pytest.mark.parametrize("size", [0, MAX_PAGE_SIZE + 1, 1000])
def test_page_size_is_between_one_and_three_hundred(size):
    with pytest.raises(ValueError, match="page size"):
        SearchCriteria().page(1, size=size)
    with pytest.raises(ValueError, match="page size"):
        SearchCriteria(page_size=size)


@pytest.mark.parametrize(
    ("field", "value", "condition"),
    [
        ("updated_at", "x", "gte"),  # not a Commerce condition type
        ("updated_at]&searchCriteria[pageSize", "x", "eq"),
        ("", "x", "eq"),
        ("updated_at", None, "eq"),
        ("updated_at", datetime(2026, 1, 1), "gteq"),  # naive: which zone?
        ("updated_at", True, "eq"),
    ],
)
def test_bad_filters_are_refused(field, value, condition):
    with pytest.raises(ValueError):
        SearchCriteria().where(field, value, condition)


def test_sort_direction_and_page_number_are_checked():
    with pytest.raises(ValueError):
        SearchCriteria().order_by("updated_at", "sideways")
    with pytest.raises(ValueError):
        SearchCriteria().page(0)
