"""Screenshots of the admin, taken with Chromium against a running server (`make run`, or the browser test's):
the dashboard, a record that needs review, and the reconciliation page.

    .venv/bin/python bench/screenshots.py --url http://127.0.0.1:8000 --user finance --password '...' \
        [--out var/screenshots]

It needs the playwright package (the dev extras) and Debian's Chromium at /usr/bin/chromium; no browser download.
The user should be in the Finance group. The record shot needs a record that needs review; the reconciliation shot
is skipped, saying so, while the server has no reconciliation page; with runs, it shows the newest run's page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from playwright.sync_api import Page, Playwright, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1400, "height": 900}
RECONCILIATION_PATH = "/admin/sync/reconciliationrun/"


def launch(playwright: Playwright):
    """Debian's Chromium, never a downloaded browser build."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def log_in(page: Page, base: str, username: str, password: str) -> None:
    """Through the admin's login page, as a person would; ends on the dashboard."""
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")


def shoot_dashboard(page: Page, base: str, out: Path) -> Path:
    page.goto(f"{base}/admin/")
    page.wait_for_selector("#dashboard")
    return _shoot(page, out / "dashboard.png")


def shoot_record_needing_review(page: Page, base: str, out: Path) -> Path | None:
    """The first record of the first connection with any needing review, opened from the dashboard."""
    page.goto(f"{base}/admin/")
    links = page.locator('a[data-dashboard="needs-review"]')
    for i in range(links.count()):
        if links.nth(i).inner_text().strip() != "0":
            links.nth(i).click()
            page.locator("#result_list tbody tr th a").first.click()
            page.wait_for_selector(".field-plan_preview")
            return _shoot(page, out / "record-needs-review.png")
    print("record-needs-review.png skipped: no record needs review", file=sys.stderr)
    return None


def shoot_reconciliation(page: Page, base: str, out: Path) -> Path | None:
    response = page.goto(f"{base}{RECONCILIATION_PATH}")
    if response is None or response.status == 404:
        print(f"reconciliation.png skipped: {RECONCILIATION_PATH} is not on this server (404)", file=sys.stderr)
        return None
    # The newest run's own page (its table by day and currency, and the differences), when there is one.
    newest = page.locator("#result_list tbody tr th a").first
    if newest.count():
        newest.click()
        page.wait_for_load_state()
    return _shoot(page, out / "reconciliation.png")


def _shoot(page: Page, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "screenshots")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            log_in(page, base, args.user, args.password)
            taken = [
                shoot_dashboard(page, base, args.out),
                shoot_record_needing_review(page, base, args.out),
                shoot_reconciliation(page, base, args.out),
            ]
        finally:
            browser.close()
    for path in taken:
        if path is not None:
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
