"""manage.py backfill against the mock Commerce: a live progress line on a terminal, silence with --quiet or when
the output is not a terminal, and the summary at the end either way."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
from django.core.management import call_command

from commerce.backfill import backfill_run
from connector.models import Record
from tests import mockservers
from tests.mockservers import mock_connection

commerce_mock = mockservers.commerce_mock

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("allow_local_endpoints", "token_cache")]
SEEDED = "saw 1 creditmemos, 2 invoices, 3 orders; created 6, already known 0, unreadable 0."


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def shop(commerce_mock):
    return mock_connection(commerce=commerce_mock)


def test_the_service_reports_every_page_it_reads(shop):
    pages = []
    since = datetime(2026, 9, 1, tzinfo=UTC)
    result = backfill_run(
        connection=shop, since=since, page_size=2, progress=lambda kind, n, so_far: pages.append((kind, n))
    )
    assert sum(n for _, n in pages) == sum(result.seen.values()) == 6
    assert sorted({kind for kind, _ in pages}) == ["creditmemo", "invoice", "order"]
    assert max(n for _, n in pages) == 2


def test_on_a_terminal_a_live_line_counts_the_documents_and_the_summary_follows(shop):
    out = Tty()
    call_command("backfill", shop.slug, "--since", "2026-09-01", stdout=out)
    text = out.getvalue()
    assert f"backfill {shop.slug}" in text
    assert "6 done" in text
    assert text.splitlines()[-1].endswith(f"Since 2026-09-01 00:00:00 UTC: {SEEDED}")  # after the cursor comes back
    assert Record.objects.filter(connection=shop).count() == 6


@pytest.mark.parametrize("terminal", [False, True])
def test_quiet_or_not_a_terminal_prints_only_the_summary(shop, terminal):
    out = Tty() if terminal else io.StringIO()
    args = ["--quiet"] if terminal else []
    call_command("backfill", shop.slug, "--since", "2026-09-01", *args, stdout=out)
    assert out.getvalue().splitlines() == [f"Since 2026-09-01 00:00:00 UTC: {SEEDED}"]
