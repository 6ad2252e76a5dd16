"""Fusion reference data: the cache, fetch on a miss, and what makes a customer or account unusable."""

from datetime import date

import pytest
import responses
from django.core.cache import cache
from django.utils import timezone

from fusion import reference
from fusion.client import FusionClient
from fusion.models import AccountCombination, CustomerAccount
from tests.factories import make_connection

BASE = "https://acme.fa.us2.oraclecloud.com/fscmRestApi/resources/11.13.18.05"
TOKEN_URL = "https://idcs-0123abcd.identity.oraclecloud.com/oauth2/v1/token"
NAMES = ("Company", "Department", "Account", "SubAccount", "Product")

pytestmark = pytest.mark.django_db


def _combo(value, **extra):
    row = dict(zip(NAMES, value.split("-"), strict=True))
    row.update(
        {
            "_CODE_COMBINATION_ID": 1,
            "EnabledFlag": "Y",
            "StartDateActive": "2015-01-01",
            "EndDateActive": None,
            "DetailPostingAllowedFlag": "Y",
            "AccountType": "R",
        }
    )
    row.update(extra)
    return row


def _page(items):
    return {"items": items, "count": len(items), "hasMore": False, "limit": 500, "offset": 0}


@pytest.fixture
def rsps():
    cache.clear()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, TOKEN_URL, json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
        yield mock


def _check(connection, combos, customer=("1008", "1042")):
    return reference.reference_check(
        connection=connection,
        client=FusionClient.for_connection(connection),
        on=date(2026, 11, 20),
        customer=customer,
        combinations=combos,
        segment_names=NAMES,
        delimiter="-",
    )


def test_refresh_caches_sites_and_combinations_and_disables_what_vanished(rsps):
    connection = make_connection()
    AccountCombination.objects.create(connection=connection, combination="09-000-0000-0000-000")
    rsps.add(
        responses.GET,
        f"{BASE}/customerAccountSitesLOV",
        json=_page([{"AccountNumber": "1008", "SiteUseId": 1042, "SiteName": "CSR Seattle"}]),
    )
    rsps.add(
        responses.GET,
        f"{BASE}/accountCombinationsLOV",
        json=_page([_combo("01-000-4110-0000-000"), _combo("01-000-4999-0000-000", EnabledFlag="N")]),
    )
    counts = reference.reference_refresh(
        connection=connection, client=FusionClient.for_connection(connection), segment_names=NAMES
    )
    # one site, findable by id and by name; 2 sites and 2 combinations added, 1 combination disabled
    assert counts == {"sites": 2, "combinations": 2, "changed": 5}
    assert set(CustomerAccount.objects.values_list("site", flat=True)) == {"1042", "CSR Seattle"}
    enabled = dict(AccountCombination.objects.values_list("combination", "enabled"))
    assert enabled == {"01-000-4110-0000-000": True, "01-000-4999-0000-000": False, "09-000-0000-0000-000": False}


def _refresh(connection):
    return reference.reference_refresh(
        connection=connection, client=FusionClient.for_connection(connection), segment_names=NAMES
    )


def test_a_refresh_rewrites_only_the_rows_fusion_changed(rsps):
    connection = make_connection()
    rsps.add(
        responses.GET,
        f"{BASE}/customerAccountSitesLOV",
        json=_page([{"AccountNumber": "1008", "SiteUseId": 1042, "SiteName": "CSR Seattle", "CustomerName": "CSR"}]),
    )
    lov = rsps.add(
        responses.GET,
        f"{BASE}/accountCombinationsLOV",
        json=_page([_combo("01-000-4110-0000-000"), _combo("01-000-4999-0000-000")]),
    )
    _refresh(connection)
    stamps = dict(AccountCombination.objects.values_list("combination", "fetched_at"))
    site_stamps = set(CustomerAccount.objects.values_list("fetched_at", flat=True))
    assert _refresh(connection)["changed"] == 0
    assert dict(AccountCombination.objects.values_list("combination", "fetched_at")) == stamps
    assert set(CustomerAccount.objects.values_list("fetched_at", flat=True)) == site_stamps

    rsps.replace(
        responses.GET,
        lov.url,
        json=_page([_combo("01-000-4110-0000-000"), _combo("01-000-4999-0000-000", EnabledFlag="N")]),
    )
    assert _refresh(connection)["changed"] == 1
    after = dict(AccountCombination.objects.values_list("combination", "fetched_at"))
    assert after["01-000-4110-0000-000"] == stamps["01-000-4110-0000-000"]
    assert after["01-000-4999-0000-000"] > stamps["01-000-4999-0000-000"]
    assert not AccountCombination.objects.get(combination="01-000-4999-0000-000").enabled


def test_a_row_a_recent_refresh_confirmed_is_served_from_the_cache_however_old(rsps):
    connection = make_connection()
    rsps.add(
        responses.GET,
        f"{BASE}/customerAccountSitesLOV",
        json=_page([{"AccountNumber": "1008", "SiteUseId": 1042, "SiteName": "CSR Seattle"}]),
    )
    lov = rsps.add(responses.GET, f"{BASE}/accountCombinationsLOV", json=_page([_combo("01-000-4110-0000-000")]))
    long_ago = timezone.now() - reference.MAX_CACHE_AGE * 3
    _refresh(connection)
    AccountCombination.objects.update(fetched_at=long_ago)
    CustomerAccount.objects.update(fetched_at=long_ago)
    calls = len(rsps.calls)
    assert _refresh(connection)["changed"] == 0  # unchanged: the rows keep their old stamps
    fetched = len(rsps.calls)
    assert _check(connection, ["01-000-4110-0000-000"]) == []
    assert len(rsps.calls) == fetched, "a confirmed row is not fetched again"
    assert fetched > calls

    cache.clear()  # the cache forgot the refresh: the old rows are fetched again
    assert _check(connection, ["01-000-4110-0000-000"]) == []
    assert lov.call_count == 3


def test_a_miss_is_fetched_once_then_served_from_the_cache(rsps):
    connection = make_connection()
    rsps.add(
        responses.GET,
        f"{BASE}/customerAccountSitesLOV",
        json=_page([{"AccountNumber": "1008", "SiteUseId": 1042, "SiteName": "CSR Seattle"}]),
    )
    lov = rsps.add(responses.GET, f"{BASE}/accountCombinationsLOV", json=_page([_combo("01-000-4110-0000-000")]))
    assert _check(connection, ["01-000-4110-0000-000"]) == []
    assert _check(connection, ["01-000-4110-0000-000"]) == []
    assert lov.call_count == 1
    assert "Company+%3D+%2701%27" in lov.calls[0].request.url or "Company%20%3D%20%2701%27" in lov.calls[0].request.url


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"EnabledFlag": "N"}, "is disabled in Fusion"),
        ({"EndDateActive": "2020-12-31"}, "was end-dated on 2020-12-31"),
        ({"StartDateActive": "2027-01-01"}, "is not active until 2027-01-01"),
        ({"DetailPostingAllowedFlag": "N"}, "does not allow detail posting"),
    ],
)
def test_unusable_combinations_are_reported_in_plain_words(rsps, row, expected):
    connection = make_connection()
    rsps.add(
        responses.GET, f"{BASE}/customerAccountSitesLOV", json=_page([{"AccountNumber": "1008", "SiteUseId": 1042}])
    )
    rsps.add(responses.GET, f"{BASE}/accountCombinationsLOV", json=_page([_combo("01-000-4110-0000-000", **row)]))
    (problem,) = _check(connection, ["01-000-4110-0000-000"])
    assert expected in problem.message


def test_unknown_customer_and_unknown_combination_are_both_reported(rsps):
    connection = make_connection()
    rsps.add(responses.GET, f"{BASE}/customerAccountSitesLOV", json=_page([]))
    rsps.add(responses.GET, f"{BASE}/accountCombinationsLOV", json=_page([]))
    problems = _check(connection, ["01-000-7777-0000-000"], customer=("4040", "1"))
    assert [p.code for p in problems] == ["customer_unknown", "combination_unknown"]
    assert "no active customer account 4040 with bill-to site 1" in problems[0].message


def test_a_customer_mapped_without_a_site_is_found_on_first_use(rsps):
    connection = make_connection()
    rsps.add(
        responses.GET,
        f"{BASE}/customerAccountSitesLOV",
        json=_page([{"AccountNumber": "1008", "SiteUseId": 1042, "SiteName": "CSR Seattle"}]),
    )
    rsps.add(responses.GET, f"{BASE}/accountCombinationsLOV", json=_page([]))
    assert _check(connection, [], customer=("1008", "")) == []
