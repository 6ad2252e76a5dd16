"""The resolver: one Commerce document and the rules in effect on its date, in; a PostingPlan out."""

from __future__ import annotations

from datetime import UTC, date
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.documents import SalesDocument, currency_exponent, quantize

from .accounts import Account, AccountBuilder
from .data import CURRENCY_CONVERT, CURRENCY_KEEP, USER_RATE_TYPE, ConnectionDefaults, RuleSet, StoreRuleData
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
from .money import compensation_note, price_line
from .plan import (
    COMMENTS_MAX,
    DESCRIPTION_MAX,
    FREIGHT,
    LINE_ADJUSTMENT,
    LINE_DISCOUNT,
    LINE_FREIGHT,
    LINE_ITEM,
    LINE_PREPAYMENT,
    LINE_ROUNDING,
    RECEIVABLE,
    REVENUE,
    TAX,
    Conversion,
    Distribution,
    JournalLine,
    PlanHeader,
    PlanLine,
    PostingPlan,
    Problems,
    cut,
)

# Payments taken inside Commerce (Adobe Commerce gift cards, store credit, reward points), which Commerce takes
# off the grand total: SalesDocument field -> the plan line's description.
PREPAYMENTS = (
    ("gift_cards_amount", "Gift card"),
    ("customer_balance_amount", "Store credit"),
    ("reward_currency_amount", "Reward points"),
)

# The rate Fusion takes for the User rate type: this many decimals.
RATE_PLACES = 10


def _local_date(document: SalesDocument, time_zone: str) -> date:
    created = document.created_at
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    try:
        zone = ZoneInfo(time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return created.astimezone(zone).date()


def resolve(
    document: SalesDocument,
    rules: RuleSet,
    defaults: ConnectionDefaults,
    *,
    original_invoice_number: str = "",
) -> PostingPlan:
    """Resolve one Commerce document into a PostingPlan. Never raises for missing mappings: they are problems
    on the plan, each with a reason and a resolution, so the record can be parked with both."""
    currency = document.currency.upper()

    def q(amount: Decimal) -> Decimal:
        return quantize(Decimal(amount), currency)

    on = _local_date(document, defaults.time_zone)
    problems = Problems()
    separate_discounts = defaults.discount_mode == "separate"
    manual = defaults.distributions != "auto"
    journal = defaults.journal_mode == "sales_journal"
    needs_accounts = manual or journal

    store = match_store(document, rules.stores, on)
    store_gaps = untested_match_types(
        store,
        STORE_MATCH_TYPES,
        {"store": document.store_id, "store_code": document.store_code, "website": document.website_id},
        {r.match_type for r in rules.stores if is_effective(r, on)},
    )
    if store_gaps:
        problems.add(
            "store_data_missing",
            f"The document (store {document.store_id or 'unknown'}) has no {data_words(store_gaps)}, so "
            f"the store rules by {label_words(store_gaps)} could not be tried (it would have used "
            f"{store.label if store is not None else 'the connection defaults'}).",
            "Check that the Commerce document carries its store id and that Commerce's store views (GET "
            "/V1/store/storeViews) list it with its code and website, or add a store rule by store id for it in "
            "Mappings > Store rules, then replay the record.",
        )
    customer = match_customer(document.customer, rules.customers, on)
    header = _header(document, defaults, on, store, customer, problems, original_invoice_number=original_invoice_number)
    accounts = (
        AccountBuilder(rules=rules, on=on, store=store, customer=customer, problems=problems)
        if needs_accounts
        else None
    )

    lines: list[PlanLine] = []
    # (account_class, line_number, amount, Account) for every credit of the sale: revenue, freight and tax.
    postings: list[tuple[str, int | None, Decimal, Account]] = []
    no_account = Account("", (), "AutoAccounting decides")

    def account(template: str, product: Matched | None = None, line_number: int | None = None) -> Account:
        if accounts is None:
            return no_account
        return accounts.build(template, product=product, line_number=line_number)

    live_product_types = {r.match_type for r in rules.products if is_effective(r, on)}
    number = 0
    for source in document.lines:
        gross, discount, tax = q(source.row_total), q(source.discount), q(source.tax)
        # With tax-inclusive prices a discount carries tax, which Commerce gives back as the discount tax
        # compensation (row_total - discount + tax + compensation is the line's part of the grand total): the
        # discount off the net price is what is left.
        compensation = q(source.discount_tax_compensation)
        if source.qty == 0 and not (gross or discount or tax or compensation):
            continue
        net_discount = discount - compensation
        product = match_product(source, rules.products, on)
        product_rule = product.rule if product is not None else None
        product_gaps = untested_match_types(
            product,
            PRODUCT_MATCH_TYPES,
            {"attribute_set": source.attribute_set_id, "category": source.category_ids},
            live_product_types,
        )
        if product_gaps:
            problems.add(
                "product_data_missing",
                f"Line {number + 1}: SKU {source.sku} has no {data_words(product_gaps)} in the document, so "
                f"the product rules by {label_words(product_gaps)} could not be tried (it would have used "
                f"{product.label if product is not None else 'no product rule'}).",
                f"Check that Commerce returns product {source.sku} (GET /V1/products/{source.sku}) with its attribute "
                "set and categories (the integration needs Magento_Catalog::products; a product in no category needs "
                f"one), or add a product rule for SKU {source.sku} in Mappings > Product rules, then replay the "
                "record.",
                line_number=number + 1,
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
        amount = gross if separate_discounts else gross - net_discount
        number += 1
        quantity, unit_price, qty_note = price_line(amount, source.qty, currency)
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_ITEM,
                description=cut(f"{source.sku} {source.name}".strip() + qty_note, DESCRIPTION_MAX),
                quantity=quantity,
                unit_selling_price=unit_price,
                amount=amount,
                tax_amount=tax,
                item_number=getattr(product_rule, "item_number", ""),
                memo_line=getattr(product_rule, "memo_line", ""),
                sku=source.sku,
                source_line_id=source.line_id,
                tax_percent=source.tax_percent,
                reason=product.label if product is not None else "no product rule",
            )
        )
        postings.append((REVENUE, number, amount, account("revenue", product, number)))
        if tax:
            postings.append((TAX, number, tax, account("tax", None, number)))
        if separate_discounts and net_discount:
            number += 1
            lines.append(
                PlanLine(
                    line_number=number,
                    kind=LINE_DISCOUNT,
                    description=cut(f"Discount {source.sku}", DESCRIPTION_MAX),
                    quantity=Decimal("1"),
                    unit_selling_price=-net_discount,
                    amount=-net_discount,
                    sku=source.sku,
                    source_line_id=source.line_id,
                    reason=f"discount on line {number - 1}" + compensation_note(discount, compensation),
                )
            )
            postings.append((REVENUE, number, -net_discount, account("discount", product, number)))

    shipping, shipping_discount, shipping_tax, shipping_compensation = (
        q(document.shipping_amount),
        q(document.shipping_discount),
        q(document.shipping_tax),
        q(document.shipping_discount_tax_compensation),
    )
    if shipping or shipping_discount or shipping_tax or shipping_compensation:
        shipping_net_discount = shipping_discount - shipping_compensation
        freight = shipping if separate_discounts else shipping - shipping_net_discount
        number += 1
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_FREIGHT,
                description="Shipping",
                quantity=Decimal("1"),
                unit_selling_price=freight,
                amount=freight,
                tax_amount=shipping_tax,
                reason="shipping",
            )
        )
        postings.append((FREIGHT, number, freight, account("freight", None, number)))
        if shipping_tax:
            postings.append((TAX, number, shipping_tax, account("tax", None, number)))
        if separate_discounts and shipping_net_discount:
            number += 1
            lines.append(
                PlanLine(
                    line_number=number,
                    kind=LINE_DISCOUNT,
                    description="Shipping discount",
                    quantity=Decimal("1"),
                    unit_selling_price=-shipping_net_discount,
                    amount=-shipping_net_discount,
                    reason="shipping discount" + compensation_note(shipping_discount, shipping_compensation),
                )
            )
            postings.append((REVENUE, number, -shipping_net_discount, account("discount", None, number)))

    # The lines carry their compensation. A payload whose items do not is caught up from the header, which counts
    # the items' compensation on an order and the items' and shipping's on an invoice or credit memo.
    unplaced = Decimal("0")
    if document.discount_tax_compensation and not any(ln.discount_tax_compensation for ln in document.lines):
        unplaced = q(document.discount_tax_compensation)
        if document.kind != "order":
            unplaced -= shipping_compensation
    if unplaced:
        number += 1
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_DISCOUNT,
                description="Discount tax compensation",
                quantity=Decimal("1"),
                unit_selling_price=unplaced,
                amount=unplaced,
                reason=f"discount tax compensation {unplaced} from the Commerce totals (its items carry none)",
            )
        )
        postings.append(
            (REVENUE, number, unplaced, account("discount" if separate_discounts else "revenue", None, number))
        )

    for text, value in (
        ("Refund adjustment", q(document.adjustment_positive)),
        ("Adjustment fee", -q(document.adjustment_negative)),
    ):
        if value:
            number += 1
            lines.append(
                PlanLine(
                    line_number=number,
                    kind=LINE_ADJUSTMENT,
                    description=text,
                    quantity=Decimal("1"),
                    unit_selling_price=value,
                    amount=value,
                    reason="credit memo adjustment",
                )
            )
            postings.append((REVENUE, number, value, account("revenue", None, number)))

    # Gift cards, store credit and reward points are payments, not price changes: the sale keeps its full price
    # and these lines (on the prepayment account) bring the document down to the grand total Commerce reports,
    # which is what the customer still owes (or, on a credit memo, what is refunded by other means).
    for field_name, text in PREPAYMENTS:
        paid = q(getattr(document, field_name))
        if not paid:
            continue
        number += 1
        if document.kind == "creditmemo":
            why = f"{paid} {currency} refunded to the {text.lower()} in Commerce, not part of its grand total"
        else:
            why = f"{paid} {currency} paid by {text.lower()} in Commerce, not part of its grand total"
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_PREPAYMENT,
                description=text,
                quantity=Decimal("1"),
                unit_selling_price=-paid,
                amount=-paid,
                reason=why,
            )
        )
        postings.append((REVENUE, number, -paid, account("prepayment", None, number)))

    commerce_total = q(document.grand_total)
    plan_total = sum((line.amount + line.tax_amount for line in lines), Decimal("0"))
    residue = commerce_total - plan_total
    # Commerce rounds per line and sums; we round per amount. Each line may differ by at most one minor unit.
    # Count Commerce's lines (items, shipping, adjustments) before our rounding, so amounts that round to zero
    # here still count.
    commerce_lines = len(document.lines) + sum(
        1
        for present in (
            document.shipping_amount
            or document.shipping_discount
            or document.shipping_tax
            or document.shipping_discount_tax_compensation,
            document.adjustment_positive,
            document.adjustment_negative,
        )
        if present
    )
    minor_unit = Decimal(1).scaleb(-currency_exponent(currency))
    tolerance = minor_unit * max(commerce_lines, 1)
    if residue and abs(residue) <= tolerance:
        number += 1
        lines.append(
            PlanLine(
                line_number=number,
                kind=LINE_ROUNDING,
                description="Rounding",
                quantity=Decimal("1"),
                unit_selling_price=residue,
                amount=residue,
                reason=f"rounding difference {residue}, within {tolerance} for {commerce_lines} Commerce lines",
            )
        )
        postings.append((REVENUE, number, residue, account("rounding", None, number)))
        plan_total += residue
    elif residue:
        problems.add(
            "totals_mismatch",
            f"totals do not match: plan {plan_total}, Commerce {commerce_total}, "
            f"difference {plan_total - commerce_total} {currency}.",
            "Compare the order's lines, discounts, shipping and tax in Commerce with the plan preview; correct "
            "the order (or the connection's discount mode) and replay, or mark the record ignored and post it "
            "by hand.",
        )

    distributions: list[Distribution] = []
    journal_lines: list[JournalLine] = []
    if manual:
        for account_class, line_number, value, acct in postings:
            distributions.append(
                Distribution(account_class, line_number, acct.combination, value, acct.reason, acct.segment_values)
            )
        receivable = account("receivable")
        distributions.append(
            Distribution(
                RECEIVABLE, None, receivable.combination, plan_total, receivable.reason, receivable.segment_values
            )
        )

    if journal:
        number_text = header.transaction_number
        clearing = account("clearing")
        journal_lines.append(_journal_line(clearing, plan_total, debit=True, description=f"{number_text} clearing"))
        by_number = {line.line_number: line for line in lines}
        for account_class, line_number, value, acct in postings:
            if not value:
                continue
            line = by_number.get(line_number) if line_number is not None else None
            what = f"tax {line.description}" if account_class == TAX and line else (line.description if line else "")
            journal_lines.append(_journal_line(acct, value, debit=False, description=f"{number_text} {what}"))
        journal_lines = [line for line in journal_lines if line.entered_dr or line.entered_cr]
        debits = sum((line.entered_dr or Decimal("0") for line in journal_lines), Decimal("0"))
        credits = sum((line.entered_cr or Decimal("0") for line in journal_lines), Decimal("0"))
        if debits != credits:  # pragma: no cover - the clearing line is built from the same amounts
            problems.add(
                "journal_unbalanced",
                f"The sales journal does not balance: debits {debits}, credits {credits}.",
                "Report this plan to the ml-connector maintainers; do not post it by hand.",
            )

    layout = accounts.layout if accounts is not None else None
    return PostingPlan(
        connection=defaults.slug,
        document_kind=document.kind,
        document_number=document.increment_id,
        entity_id=document.entity_id,
        currency=currency,
        commerce_total=commerce_total,
        header=header,
        lines=tuple(lines),
        distributions=tuple(distributions),
        journal_lines=tuple(journal_lines),
        problems=tuple(problems.items),
        rules_date=on,
        distributions_mode="manual" if manual else "auto",
        journal_mode=defaults.journal_mode,
        segment_names=layout.segment_names if layout is not None else (),
        delimiter=layout.delimiter if layout is not None else "-",
    )


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


def _header(
    document: SalesDocument,
    defaults: ConnectionDefaults,
    on: date,
    store: Matched | None,
    customer: Matched | None,
    problems: Problems,
    *,
    original_invoice_number: str,
) -> PlanHeader:
    rule = store.rule if store is not None and isinstance(store.rule, StoreRuleData) else None
    credit_memo = document.kind == "creditmemo"

    def pick(field_name: str, default: str) -> str:
        value = getattr(rule, field_name, "") if rule is not None else ""
        return value or default

    business_unit = pick("business_unit", defaults.business_unit)
    transaction_source = pick("transaction_source", defaults.transaction_source)
    if credit_memo:
        transaction_type = pick("credit_memo_transaction_type", defaults.credit_memo_transaction_type)
    else:
        transaction_type = pick("transaction_type", defaults.transaction_type)
    for label, value in (
        ("business unit", business_unit),
        ("transaction source", transaction_source),
        ("transaction type", transaction_type),
    ):
        if not value:
            problems.add(
                "posting_default_missing",
                f"No {label} is set for this store or the connection.",
                f"Set the {label} on the connection or on a store rule in Mappings > Store rules, then replay "
                "the record.",
            )

    c = document.customer
    if customer is None:
        who = f"customer {c.commerce_id}" if c.commerce_id and not c.is_guest else "guest customer"
        problems.add(
            "customer_mapping_missing",
            f"No customer rule matches {who} (email {c.email or 'none'}, group {c.group_id or 'none'}, company "
            f"{c.company or 'none'}) and there is no default customer rule.",
            "Add a customer rule for this customer (by customer id, email, company or customer group) or a "
            "default customer rule in Mappings > Customer rules, then replay the record.",
        )
    customer_rule = customer.rule if customer is not None else None
    bill_to_number = getattr(customer_rule, "bill_to_customer_number", "")
    bill_to_site = getattr(customer_rule, "bill_to_site", "")

    currency = document.currency.upper()
    ledger_currency = (pick("ledger_currency", defaults.ledger_currency) or currency).upper()
    conversion: Conversion | None = None
    mode = rule.currency_mode if rule is not None else CURRENCY_KEEP
    if currency != ledger_currency and mode == CURRENCY_CONVERT:
        rate_type = rule.conversion_rate_type if rule is not None else ""
        rate: Decimal | None = None
        if rate_type == USER_RATE_TYPE:
            # Commerce: order amount = base amount x base_to_order_rate. Fusion wants invoice -> ledger.
            if (document.base_currency or "").upper() == ledger_currency and document.base_to_order_rate:
                rate = (Decimal(1) / Decimal(document.base_to_order_rate)).quantize(Decimal(1).scaleb(-RATE_PLACES))
            else:
                problems.add(
                    "conversion_rate_missing",
                    f"The store rule asks for the User rate from {currency} to {ledger_currency}, but the order "
                    f"carries no rate from {ledger_currency} (its base currency is "
                    f"{document.base_currency or 'unknown'}).",
                    "Use a Fusion rate type such as Corporate on the store rule, or set the Commerce base currency "
                    "to the ledger currency, then replay the record.",
                )
        if not rate_type:
            problems.add(
                "conversion_rate_type_missing",
                f"The store rule converts {currency} to {ledger_currency} but names no conversion rate type.",
                "Set the conversion rate type (for example Corporate) on the store rule, then replay the record.",
            )
        conversion = Conversion(rate_type=rate_type, conversion_date=on, rate=rate)

    prefix = defaults.transaction_number_prefix
    # Commerce numbers orders, invoices and credit memos in separate sequences; credit memos get their own
    # marker so "MAG-000000012" the invoice and credit memo 000000012 never share a Fusion number.
    transaction_number = f"{prefix}CM-{document.increment_id}" if credit_memo else f"{prefix}{document.increment_id}"
    original = ""
    if credit_memo:
        original = original_invoice_number
        if not original and defaults.invoice_event == "order" and document.order_increment_id:
            original = f"{prefix}{document.order_increment_id}"
    kind_words = {"order": "order", "invoice": "invoice", "creditmemo": "credit memo"}
    comments = f"Adobe Commerce {kind_words.get(document.kind, document.kind)} {document.increment_id}"
    if document.kind != "order" and document.order_increment_id:
        comments += f" for order {document.order_increment_id}"
    if original:
        comments += f"; credits invoice {original}"

    return PlanHeader(
        business_unit=business_unit,
        transaction_source=transaction_source,
        transaction_type=transaction_type,
        transaction_number=transaction_number,
        transaction_date=on,
        accounting_date=on,
        bill_to_customer_number=bill_to_number,
        bill_to_site=bill_to_site,
        payment_terms="" if credit_memo else defaults.payment_terms,
        currency=currency,
        conversion=conversion,
        purchase_order=document.purchase_order_number[:50],
        cross_reference=f"commerce-{document.kind}-{document.entity_id}",
        comments=cut(comments, COMMENTS_MAX),
        original_invoice_number=original,
        bill_to_reason=customer.label if customer is not None else "no customer rule",
        store_reason=store.label if store is not None else "connection defaults",
    )
