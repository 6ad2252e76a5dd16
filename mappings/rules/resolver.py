"""The resolver: one Commerce document and the rules in effect on its date, in; a PostingPlan out."""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.documents import SalesDocument, SalesLine

from .accounts import Account, AccountBuilder
from .data import FREIGHT_HEADER, ConnectionDefaults, RuleSet
from .header import build_header
from .lines import PlanLines
from .matching import (
    PRODUCT_MATCH_TYPES,
    STORE_MATCH_TYPES,
    Matched,
    data_words,
    is_effective,
    label_words,
    match_customer,
    match_product,
    match_store,
    untested_match_types,
)
from .money import commerce_line_count, minor_unit
from .plan import (
    DESCRIPTION_MAX,
    RECEIVABLE,
    TAX,
    Distribution,
    JournalLine,
    PostingPlan,
    Problems,
    cut,
)
from .taxes import TaxPlanner


def resolve(
    document: SalesDocument,
    rules: RuleSet,
    defaults: ConnectionDefaults,
    *,
    original_invoice_number: str = "",
) -> PostingPlan:
    """Resolve one Commerce document into a PostingPlan. Never raises for missing mappings: they are problems
    on the plan, each with a reason and a resolution, so the record can be parked with both."""
    on = _local_date(document, defaults.time_zone)
    problems = Problems()
    manual = defaults.distributions != "auto"
    journal = defaults.journal_mode == "sales_journal"
    needs_accounts = manual or journal

    store = _match_store(document, rules, on, problems)
    customer = match_customer(document.customer, rules.customers, on)
    header = build_header(
        document, defaults, on, store, customer, problems, original_invoice_number=original_invoice_number
    )
    accounts = (
        AccountBuilder(rules=rules, on=on, store=store, customer=customer, problems=problems)
        if needs_accounts
        else None
    )

    currency = document.currency.upper()
    # Oracle documents one freight shape for credit memos: FreightCreditAmount at the header.
    freight_mode = FREIGHT_HEADER if document.kind == "creditmemo" else defaults.freight_mode
    taxes = TaxPlanner(
        rules=rules.taxes, on=on, document=document, mode=defaults.tax_mode, currency=currency, problems=problems
    )
    book = PlanLines(
        currency=currency,
        separate_discounts=defaults.discount_mode == "separate",
        accounts=accounts,
        taxes=taxes,
        freight_mode=freight_mode,
        problems=problems,
    )
    _add_items(book, document, rules, on, problems, needs_accounts=needs_accounts)
    book.add_shipping(document)
    book.add_unplaced_compensation(document)
    book.add_adjustments(document)
    book.add_prepayments(document)
    commerce_total = book.q(document.grand_total)
    plan_total = _settle_rounding(book, document, commerce_total, problems)

    distributions = _distributions(book, plan_total) if manual else ()
    journal_lines = _journal_lines(book, plan_total, header.transaction_number, problems) if journal else ()

    layout = accounts.layout if accounts is not None else None
    return PostingPlan(
        connection=defaults.slug,
        document_kind=document.kind,
        document_number=document.increment_id,
        entity_id=document.entity_id,
        currency=book.currency,
        commerce_total=commerce_total,
        header=header,
        lines=tuple(book.lines),
        distributions=distributions,
        journal_lines=journal_lines,
        problems=tuple(problems.items),
        rules_date=on,
        distributions_mode="manual" if manual else "auto",
        journal_mode=defaults.journal_mode,
        segment_names=layout.segment_names if layout is not None else (),
        delimiter=layout.delimiter if layout is not None else "-",
        tax_mode=defaults.tax_mode,
        freight_mode=freight_mode,
        header_freight=book.header_freight,
    )


def _local_date(document: SalesDocument, time_zone: str) -> date:
    """The document's date in the connection's time zone (UTC when the zone is unknown): the rules in effect
    that day apply, and it is the transaction and accounting date."""
    created = document.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return created.astimezone(zone).date()


def _match_store(document: SalesDocument, rules: RuleSet, on: date, problems: Problems) -> Matched | None:
    """The store rule, and a problem when a better-ranked store rule could not be tried for want of data."""
    store = match_store(document, rules.stores, on)
    gaps = untested_match_types(
        store,
        STORE_MATCH_TYPES,
        {"store": document.store_id, "store_code": document.store_code, "website": document.website_id},
        {r.match_type for r in rules.stores if is_effective(r, on)},
    )
    if gaps:
        problems.add(
            "store_data_missing",
            f"The document (store {document.store_id or 'unknown'}) has no {data_words(gaps)}, so "
            f"the store rules by {label_words(gaps)} could not be tried (it would have used "
            f"{store.label if store is not None else 'the connection defaults'}).",
            "Check that the Commerce document carries its store id and that Commerce's store views (GET "
            "/V1/store/storeViews) list it with its code and website, or add a store rule by store id for it in "
            "Mappings > Store rules, then replay the record.",
        )
    return store


def _add_items(
    book: PlanLines, document: SalesDocument, rules: RuleSet, on: date, problems: Problems, *, needs_accounts: bool
) -> None:
    """Each item line with its product rule, its tax and (when discounts go separately) its discount."""
    live_types = {r.match_type for r in rules.products if is_effective(r, on)}
    for source in document.lines:
        if book.skips(source):
            continue
        product = match_product(source, rules.products, on)
        _check_product(source, product, live_types, book.next_number, problems, needs_accounts=needs_accounts)
        book.add_item(source, product)


def _check_product(
    source: SalesLine,
    product: Matched | None,
    live_types: set[str],
    line_number: int,
    problems: Problems,
    *,
    needs_accounts: bool,
) -> None:
    """A problem when a better-ranked product rule could not be tried for want of data, or (when accounts are
    built) when no product rule matches at all."""
    gaps = untested_match_types(
        product,
        PRODUCT_MATCH_TYPES,
        {"attribute_set": source.attribute_set_id, "category": source.category_ids},
        live_types,
    )
    if gaps:
        problems.add(
            "product_data_missing",
            f"Line {line_number}: SKU {source.sku} has no {data_words(gaps)} in the document, so "
            f"the product rules by {label_words(gaps)} could not be tried (it would have used "
            f"{product.label if product is not None else 'no product rule'}).",
            f"Check that Commerce returns product {source.sku} (GET /V1/products/{source.sku}) with its attribute "
            "set and categories (the integration needs Magento_Catalog::products; a product in no category needs "
            f"one), or add a product rule for SKU {source.sku} in Mappings > Product rules, then replay the "
            "record.",
            line_number=line_number,
        )
    elif product is None and needs_accounts:
        categories = ", ".join(str(c) for c in source.category_ids) or "none"
        problems.add(
            "product_mapping_missing",
            f"No product rule matches SKU {source.sku} (attribute set {source.attribute_set_id or 'none'}, "
            f"categories {categories}) and there is no default product rule.",
            f"Add a product rule for SKU {source.sku} (or a SKU pattern, attribute set or category that "
            "covers it, or a default product rule) in Mappings > Product rules, then replay the record.",
        )


def _settle_rounding(book: PlanLines, document: SalesDocument, commerce_total: Decimal, problems: Problems) -> Decimal:
    """The plan's total, made equal to Commerce's by a rounding line when they differ by no more than one minor
    unit per Commerce line (Commerce rounds per line and sums; we round per amount); a problem when they differ
    by more."""
    plan_total = book.total
    residue = commerce_total - plan_total
    commerce_lines = commerce_line_count(document)
    tolerance = minor_unit(book.currency) * max(commerce_lines, 1)
    if residue and abs(residue) <= tolerance:
        book.add_rounding(
            residue, f"rounding difference {residue}, within {tolerance} for {commerce_lines} Commerce lines"
        )
        plan_total += residue
    elif residue:
        problems.add(
            "totals_mismatch",
            f"totals do not match: plan {plan_total}, Commerce {commerce_total}, "
            f"difference {plan_total - commerce_total} {book.currency}.",
            "Compare the order's lines, discounts, shipping and tax in Commerce with the plan preview; correct "
            "the order (or the connection's discount mode) and replay, or mark the record ignored and post it "
            "by hand.",
        )
    return plan_total


def _distributions(book: PlanLines, plan_total: Decimal) -> tuple[Distribution, ...]:
    """The AR invoice's distributions: every posting, and the receivable for the plan's total."""
    distributions = [
        Distribution(
            p.account_class, p.line_number, p.account.combination, p.amount, p.account.reason, p.account.segment_values
        )
        for p in book.postings
    ]
    receivable = book.account("receivable")
    distributions.append(
        Distribution(RECEIVABLE, None, receivable.combination, plan_total, receivable.reason, receivable.segment_values)
    )
    return tuple(distributions)


def _journal_lines(
    book: PlanLines, plan_total: Decimal, transaction_number: str, problems: Problems
) -> tuple[JournalLine, ...]:
    """The sales journal: the plan's total debited to the clearing account, every posting credited (a negative
    one debited), lines of zero left out."""
    clearing = book.account("clearing")
    lines = [_journal_line(clearing, plan_total, debit=True, description=f"{transaction_number} clearing")]
    by_number = {line.line_number: line for line in book.lines}
    for posting in book.postings:
        if not posting.amount:
            continue
        line = by_number.get(posting.line_number) if posting.line_number is not None else None
        what = posting.label or (line.description if line is not None else "")
        if posting.account_class == TAX and not posting.label and line is not None:
            what = f"tax {line.description}"
        lines.append(
            _journal_line(posting.account, posting.amount, debit=False, description=f"{transaction_number} {what}")
        )
    lines = [line for line in lines if line.entered_dr or line.entered_cr]
    debits = sum((line.entered_dr or Decimal("0") for line in lines), Decimal("0"))
    credits = sum((line.entered_cr or Decimal("0") for line in lines), Decimal("0"))
    if debits != credits:  # pragma: no cover - the clearing line is built from the same amounts
        problems.add(
            "journal_unbalanced",
            f"The sales journal does not balance: debits {debits}, credits {credits}.",
            "Report this plan to the ml-connector maintainers; do not post it by hand.",
        )
    return tuple(lines)


def _journal_line(acct: Account, value: Decimal, *, debit: bool, description: str) -> JournalLine:
    # A negative amount (a discount, a negative rounding) goes on the other side.
    if value < 0:
        debit, value = not debit, -value
    return JournalLine(
        combination=acct.combination,
        entered_dr=value if debit else None,
        entered_cr=None if debit else value,
        description=cut(description.strip(), DESCRIPTION_MAX),
        reason=acct.reason,
        segment_values=acct.segment_values,
    )
