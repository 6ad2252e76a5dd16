"""The finance workflow in a real browser against real processes (gunicorn, a Celery worker and beat, the mock
Fusion and Commerce servers): an order parked for a missing product rule is found from the dashboard, its plan
preview names the product, the rule is added in the mappings admin, the replay posts it once to Fusion; then an
integration admin tests the connection, breaks its Fusion secret and sees the failure in plain words."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import Group, User
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from playwright.sync_api import expect, sync_playwright

from bench.screenshots import (
    VIEWPORT,
    launch,
    log_in,
    shoot_dashboard,
    shoot_reconciliation,
    shoot_record_needing_review,
)
from connector.groups import GROUP_FINANCE, GROUP_INTEGRATION_ADMIN
from connector.models import Record
from mappings.models import ProductRule
from mocks.commerce import MockCommerce
from mocks.fusion import MockFusion
from tests.e2e.processes import flush_redis, free_port, process_env, processes, require_services, wait_for
from tests.factories import add_hmac_key
from tests.mockservers import SEED, mock_connection, running
from tests.posting import seed_mappings

pytestmark = [pytest.mark.browser]
CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "var" / "screenshots"
FIXTURE = ROOT / "tests" / "fixtures" / "commerce" / "order_place_after.json"
SECRET = "browser-webhook-secret"
PASSWORD = "a-long-browser-test-password"
MAPPED_SKU, MISSING_SKU = "WS12-M-Orange", "24-MB01"
WRONG_SECRET = "not-the-fusion-secret-at-all"
BROKER_DB, CACHE_DB = settings.TEST_REDIS_DBS["e2e_broker"], settings.TEST_REDIS_DBS["e2e_cache"]
WAIT = 45  # seconds, generous: two cores shared with other work


def _require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"the browser test needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)")


def _user(username: str, group: str) -> None:
    user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name=group))


def _deliver_order(base: str, slug: str) -> None:
    body = FIXTURE.read_bytes()
    signature = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = requests.post(
        f"{base}/webhooks/commerce/{slug}/",
        data=body,
        headers={"Content-Type": "application/json", "X-Commerce-Signature": signature},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def _connection_with_a_product_rule_missing(fusion: MockFusion, commerce: MockCommerce):
    connection = mock_connection(fusion, commerce, name="Browser shop", retry_base_seconds=1, retry_cap_seconds=3)
    seed_mappings(connection)
    # Only one of the order's two products is mapped: the order parks until a rule for the other is added.
    ProductRule.objects.filter(connection=connection).delete()
    ProductRule.objects.create(connection=connection, match_type="sku", match_value=MAPPED_SKU)
    add_hmac_key(connection, secret=SECRET)
    every_2s, _ = IntervalSchedule.objects.get_or_create(every=2, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="relay", task="connector.relay", interval=every_2s)
    return connection


def _web_up(base: str):
    def up():
        try:
            return requests.get(f"{base}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    return up


@pytest.mark.django_db(transaction=True)
def test_finance_fixes_a_parked_order_and_replays_it_then_an_admin_tests_the_connection(
    allow_local_endpoints, tmp_path
):
    _require_chromium()
    require_services()

    flush_redis(BROKER_DB, CACHE_DB)
    with running(MockFusion(seed=SEED)) as fusion, running(MockCommerce(seed=SEED)) as commerce:
        connection = _connection_with_a_product_rule_missing(fusion, commerce)
        _user("fiona", GROUP_FINANCE)
        _user("ian", GROUP_INTEGRATION_ADMIN)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = process_env(broker_db=BROKER_DB, cache_db=CACHE_DB)
        with processes(env, tmp_path) as procs:
            procs.env = {**env, "DJANGO_SETTINGS_MODULE": "tests.browser.web_settings"}
            procs.web(port)
            procs.env = env
            procs.worker(concurrency=2)
            procs.beat()
            wait_for(_web_up(base), timeout=60, procs=procs, what="gunicorn to answer /healthz")
            _deliver_order(base, connection.slug)

            def parked():
                return Record.objects.filter(connection=connection, state=Record.State.NEEDS_REVIEW).first()

            record = wait_for(parked, timeout=WAIT, procs=procs, what="the worker to park the order")
            assert MISSING_SKU in record.last_error

            # No ORM inside: Playwright's sync API runs an event loop in this thread, which Django refuses.
            with sync_playwright() as playwright:
                browser = launch(playwright)
                try:
                    page = browser.new_page(viewport=VIEWPORT)
                    page.set_default_timeout(WAIT * 1000)

                    # 1. Finance logs in, lands on the dashboard, follows the needs-review link.
                    log_in(page, base, "fiona", PASSWORD)
                    card = page.locator(f'section[data-connection="{connection.slug}"]')
                    review = card.locator('a[data-dashboard="needs-review"]')
                    expect(review).to_have_text("1")
                    shoot_dashboard(page, base, SCREENSHOTS)
                    shoot_record_needing_review(page, base, SCREENSHOTS)
                    page.goto(f"{base}/admin/")
                    review.click()
                    expect(page.locator("#result_list tbody tr")).to_have_count(1)

                    # 2. The record, and its plan preview naming the missing product.
                    page.locator("#result_list tbody tr th a").first.click()
                    preview = page.locator(".field-plan_preview")
                    expect(preview).to_contain_text(f"No product rule matches SKU {MISSING_SKU}")
                    record_url = page.url

                    # 3. The missing rule, added through the mappings admin; back to the record; replay.
                    page.goto(f"{base}/admin/mappings/productrule/add/")
                    page.select_option("#id_connection", str(connection.pk))
                    page.select_option("#id_match_type", "sku")
                    page.fill("#id_match_value", MISSING_SKU)
                    page.click("input[name=_save]")
                    expect(page.locator("ul.messagelist li.success", has_text="was added successfully")).to_be_visible()
                    page.goto(record_url)
                    expect(preview).not_to_contain_text("No product rule")
                    page.click("text=Replay or ignore…")
                    page.fill("#reason", "Product rule for 24-MB01 added")
                    page.click("input[name=replay]")
                    expect(page.locator("ul.messagelist li.success", has_text="queued for replay")).to_be_visible()

                    # 4. The record page shows it posted, with its Fusion transaction number.
                    def posted_on_the_page():
                        page.reload()
                        return "Posted" in page.locator(".field-state").inner_text()

                    wait_for(posted_on_the_page, timeout=WAIT, interval=1, procs=procs, what="the record to post")
                    number = page.locator(".field-fusion_transaction_number .readonly").inner_text().strip()
                    assert number.startswith(connection.transaction_number_prefix), number
                    documents = [row for row in fusion.invoices.rows.values() if row.get("TransactionNumber") == number]
                    assert len(documents) == 1
                    assert fusion.state()["invoices_created"] == 1
                    shoot_reconciliation(page, base, SCREENSHOTS)

                    # 5. An integration admin: Test connection OK on both sides, then with a wrong Fusion secret.
                    admin_page = browser.new_context(viewport=VIEWPORT).new_page()
                    admin_page.set_default_timeout(WAIT * 1000)
                    log_in(admin_page, base, "ian", PASSWORD)
                    change_url = f"{base}/admin/connector/connection/{connection.pk}/change/"
                    admin_page.goto(change_url)
                    admin_page.click("button:has-text('Test connection')")
                    tested = admin_page.locator("ul.messagelist li", has_text=f"{connection.name} —")
                    expect(tested).to_have_count(2)
                    expect(tested.and_(admin_page.locator(".success"))).to_have_count(2)
                    text = tested.all_inner_texts()
                    assert any("Fusion:" in m for m in text), text
                    assert any("Commerce:" in m for m in text), text

                    admin_page.fill('input[name="fusion_client_secret"]', WRONG_SECRET)
                    admin_page.click("input[name=_continue]")
                    expect(
                        admin_page.locator("ul.messagelist li.success", has_text="changed successfully")
                    ).to_be_visible()
                    admin_page.click("button:has-text('Test connection')")
                    failure = admin_page.locator("ul.messagelist li.error", has_text=f"{connection.name} — Fusion:")
                    expect(failure).to_have_count(1)
                    expect(failure).to_contain_text("refused the client id or client secret")
                    expect(admin_page.locator("ul.messagelist li.success", has_text="Commerce:")).to_have_count(1)
                    shown = admin_page.content()
                    assert WRONG_SECRET not in shown
                    assert fusion.client_secret not in shown
                    assert "Traceback" not in shown
                    assert not re.search(r"File \"[^\"]+\.py\", line \d+", shown)
                finally:
                    browser.close()

        record.refresh_from_db()
        assert (record.state, record.fusion_transaction_number) == (Record.State.POSTED, number)
