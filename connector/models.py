"""The connection (one Commerce store set paired with one Fusion pod) and the pipeline record that carries
one Commerce document to Fusion."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

# The admin renders help texts as HTML: a placeholder such as <pod> must be escaped or it vanishes.
from django.utils.html import escape
from fernet_fields import EncryptedTextField

from core import endpoints

SECRET_FIELDS = (
    "fusion_client_secret",
    "fusion_password",
    "commerce_consumer_secret",
    "commerce_access_token",
    "commerce_access_token_secret",
    "commerce_client_secret",
)


class Connection(models.Model):
    class FusionAuth(models.TextChoices):
        OAUTH2 = "oauth2", "OAuth 2.0 client credentials"
        BASIC = "basic", "Basic (username and password)"

    class Deployment(models.TextChoices):
        PAAS = "paas", "PaaS (on-premises or cloud infrastructure, OAuth 1.0a)"
        SAAS = "saas", "SaaS (Adobe Commerce as a Cloud Service, IMS)"

    class JournalMode(models.TextChoices):
        SALES_JOURNAL = "sales_journal", "Sales journal through FBDI"
        NONE = "none", "None (Create Accounting carries AR to GL)"

    class InvoiceEvent(models.TextChoices):
        ORDER = "order", "Order placement"
        INVOICE = "invoice", "Commerce invoice creation (partial invoicing)"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)

    # Fusion side
    fusion_base_url = models.CharField(max_length=255, help_text=escape("https://<pod>.fa.<dc>.oraclecloud.com"))
    fusion_rest_version = models.CharField(
        max_length=32,
        default="11.13.18.05",
        validators=[RegexValidator(r"^(\d+(\.\d+)*|latest)$", "A REST version looks like 11.13.18.05.")],
    )
    fusion_auth = models.CharField(max_length=16, choices=FusionAuth.choices, default=FusionAuth.OAUTH2)
    fusion_token_url = models.CharField(
        max_length=255, blank=True, help_text=escape("https://idcs-<id>.identity.oraclecloud.com/oauth2/v1/token")
    )
    fusion_client_id = models.CharField(max_length=255, blank=True)
    fusion_client_secret = EncryptedTextField(blank=True, default="")
    fusion_scope = models.CharField(max_length=500, blank=True)
    fusion_username = models.CharField(max_length=255, blank=True)
    fusion_password = EncryptedTextField(blank=True, default="")

    # Posting defaults
    business_unit = models.CharField(max_length=240, blank=True)
    transaction_source = models.CharField(max_length=100, blank=True)
    transaction_type = models.CharField(max_length=100, blank=True, default="Invoice")
    credit_memo_transaction_type = models.CharField(max_length=100, blank=True, default="Credit Memo")
    payment_terms = models.CharField(max_length=100, blank=True, default="Immediate")
    currency = models.CharField(max_length=3, blank=True, default="USD")
    ledger_id = models.CharField(max_length=40, blank=True)
    journal_source = models.CharField(max_length=100, blank=True)
    journal_category = models.CharField(max_length=100, blank=True)
    journal_mode = models.CharField(max_length=16, choices=JournalMode.choices, default=JournalMode.NONE)
    invoice_event = models.CharField(max_length=16, choices=InvoiceEvent.choices, default=InvoiceEvent.ORDER)
    transaction_number_prefix = models.CharField(max_length=20, blank=True, default="MAG-")
    time_zone = models.CharField(max_length=64, default="UTC")
    fusion_distributions = models.CharField(
        max_length=16,
        choices=[("manual", "Manual distributions from the mappings"), ("auto", "AutoAccounting")],
        default="manual",
    )
    complete_invoices = models.BooleanField(default=False, help_text="Send InvoiceStatus Complete on create")
    discount_mode = models.CharField(
        max_length=16,
        choices=[("net", "Net of discount on each line"), ("separate", "A separate discount line")],
        default="net",
    )
    # Tax, freight and foreign currency, as Oracle documents them (docs/reference/fusion.md §11).
    tax_mode = models.CharField(
        max_length=16,
        choices=[
            ("manual", "Manual tax lines: Commerce's tax amounts with the mapped codes"),
            ("fusion", "Fusion computes the tax from the classification code; read back and compared"),
        ],
        default="manual",
    )
    tax_tolerance = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal("0.01"),
        help_text="Fusion tax mode: the largest difference from Commerce's tax that still posts (document "
        "currency; at least one minor unit per taxed line)",
    )
    freight_mode = models.CharField(
        max_length=16,
        choices=[
            ("allocated", "AllocatedFreightAmount spread over the invoice lines"),
            ("header", "Freight at the invoice header, with its Freight distribution"),
        ],
        default="allocated",
    )
    conversion_rate_type = models.CharField(
        max_length=30,
        blank=True,
        default="Corporate",
        help_text="Fusion rate type for documents not in the ledger currency, unless the store rule names one "
        "(User: the Commerce rate)",
    )
    journal_batch_minutes = models.PositiveIntegerField(default=15)
    journal_batch_max_lines = models.PositiveIntegerField(default=5000)

    # Retries and pacing
    retry_base_seconds = models.PositiveIntegerField(default=30)
    retry_cap_seconds = models.PositiveIntegerField(default=3600)
    retry_max_attempts = models.PositiveIntegerField(default=12)
    fusion_max_concurrency = models.PositiveIntegerField(default=4)
    fusion_max_rps = models.FloatField(default=5.0)

    # Watermarks of the scheduled polls
    commerce_backfill_watermark = models.DateTimeField(null=True, blank=True)
    fusion_sync_watermark = models.DateTimeField(null=True, blank=True)

    # Commerce side
    commerce_deployment = models.CharField(max_length=8, choices=Deployment.choices, default=Deployment.PAAS)
    commerce_base_url = models.CharField(
        max_length=255,
        help_text=escape("PaaS: https://shop.example.com; SaaS: https://<region>.api.commerce.adobe.com/<tenant>"),
    )
    commerce_store_code = models.CharField(
        max_length=64,
        default="default",
        validators=[RegexValidator(r"^[a-z0-9_]+$", "A store code is lowercase letters, digits and _.")],
    )
    commerce_consumer_key = models.CharField(max_length=255, blank=True)
    commerce_consumer_secret = EncryptedTextField(blank=True, default="")
    commerce_access_token = EncryptedTextField(blank=True, default="")
    commerce_access_token_secret = EncryptedTextField(blank=True, default="")
    commerce_client_id = models.CharField(max_length=255, blank=True)
    commerce_client_secret = EncryptedTextField(blank=True, default="")
    commerce_ims_token_url = models.CharField(
        max_length=255, blank=True, default="https://ims-na1.adobelogin.com/ims/token/v3"
    )
    commerce_scopes = models.CharField(
        max_length=500,
        blank=True,
        default="openid,AdobeID,email,profile,additional_info.roles,additional_info.projectedProductContext,commerce.accs",
    )
    commerce_org_id = models.CharField(max_length=100, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # Not stored: the secret fields that the change being saved sets (typed in the admin form), for
    # connector.connections.connection_save, which clears the secrets a host change does not give again.
    secrets_given: frozenset[str] | None = None

    class Meta:
        ordering = ["name"]
        permissions = [("replay_record", "Can replay records and mark them ignored")]

    def __str__(self) -> str:
        return f"{self.name} ({self.slug})"

    def __repr__(self) -> str:
        # Never the secrets: only identifying fields.
        return (
            f"<Connection {self.pk} {self.slug!r} fusion={self.fusion_base_url!r} commerce={self.commerce_base_url!r}>"
        )

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        self._clean_fusion(errors)
        self._clean_commerce(errors)
        self._clean_posting(errors)
        if errors:
            raise ValidationError(errors)

    def _check_url(self, errors: dict[str, list[str]], field: str, validator: Callable[[str], str]) -> None:
        try:
            setattr(self, field, validator(getattr(self, field)))
        except ValidationError as exc:
            errors.setdefault(field, []).extend(exc.messages)

    def _clean_fusion(self, errors: dict[str, list[str]]) -> None:
        self._check_url(errors, "fusion_base_url", endpoints.validate_fusion_base_url)
        if self.fusion_auth == self.FusionAuth.OAUTH2:
            self._check_url(errors, "fusion_token_url", endpoints.validate_identity_token_url)
            if not self.fusion_client_id:
                errors.setdefault("fusion_client_id", []).append("OAuth 2.0 needs the client id.")
        elif not self.fusion_username:
            errors.setdefault("fusion_username", []).append("Basic auth needs the Fusion username.")

    def _clean_commerce(self, errors: dict[str, list[str]]) -> None:
        if self.commerce_deployment == self.Deployment.SAAS:
            self._check_url(errors, "commerce_base_url", endpoints.validate_commerce_saas_base_url)
            self._check_url(errors, "commerce_ims_token_url", endpoints.validate_ims_token_url)
            if not self.commerce_client_id:
                errors.setdefault("commerce_client_id", []).append("SaaS needs the IMS client id.")
        else:
            self._check_url(errors, "commerce_base_url", endpoints.validate_commerce_paas_base_url)
            if not self.commerce_consumer_key:
                errors.setdefault("commerce_consumer_key", []).append("PaaS needs the integration's consumer key.")

    def _clean_posting(self, errors: dict[str, list[str]]) -> None:
        if self.time_zone not in available_timezones():
            errors.setdefault("time_zone", []).append(
                f"{self.time_zone!r} is not a known time zone (e.g. Europe/Paris)."
            )
        if self.currency and (len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper()):
            errors.setdefault("currency", []).append("A currency is a three-letter ISO code such as USD.")
        if self.journal_mode == self.JournalMode.SALES_JOURNAL:
            for field in ("ledger_id", "journal_source", "journal_category"):
                if not getattr(self, field):
                    errors.setdefault(field, []).append(
                        "The sales journal needs a ledger, journal source and category."
                    )

    @property
    def fusion_api_root(self) -> str:
        return f"{self.fusion_base_url.rstrip('/')}/fscmRestApi/resources/{self.fusion_rest_version}"


class WebhookKey(models.Model):
    """One key of one verification scheme. Several may be active at once, so keys can rotate."""

    class Scheme(models.TextChoices):
        HMAC = "hmac", "HMAC-SHA256 of the raw body"
        ADOBE_RSA = "adobe_rsa", "Adobe Commerce webhook signature (RSA-SHA256)"
        IO_EVENTS = "io_events", "Adobe I/O Events digital signature"

    class Encoding(models.TextChoices):
        HEX = "hex", "Hex"
        BASE64 = "base64", "Base64"

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="webhook_keys")
    scheme = models.CharField(max_length=16, choices=Scheme.choices)
    label = models.CharField(max_length=100, blank=True, help_text="A name to tell keys apart, e.g. 2026-11 rotation")
    active = models.BooleanField(default=True)
    secret = EncryptedTextField(blank=True, default="", help_text="HMAC shared secret")
    public_key = models.TextField(blank=True, help_text="PEM public key (Adobe RSA and I/O Events)")
    header_name = models.CharField(max_length=100, blank=True, default="X-Commerce-Signature")
    encoding = models.CharField(max_length=8, choices=Encoding.choices, default=Encoding.HEX)
    prefix = models.CharField(max_length=32, blank=True, help_text="e.g. sha256=")
    # Adobe signs every customer's I/O events with the same key pairs: the signature proves Adobe sent the
    # event, not that it is ours. The event's recipient client id (and, when set, its provider) must match.
    recipient_client_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="I/O Events keys: the client id of the Developer Console credential whose event registration "
        "this is (events carry it as recipientclientid). Required: an event for another recipient is refused.",
    )
    provider_id = models.CharField(
        max_length=255,
        blank=True,
        help_text="I/O Events keys, optional: the Commerce event provider id; events must then come from "
        "urn:uuid:<provider id>.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["connection", "scheme", "-created_at"]

    def __str__(self) -> str:
        return f"{self.get_scheme_display()} {self.label or self.pk}"

    def __repr__(self) -> str:
        return f"<WebhookKey {self.pk} {self.scheme} connection={self.connection_id} active={self.active}>"

    def clean(self) -> None:
        if self.scheme == self.Scheme.HMAC and not self.secret:
            raise ValidationError({"secret": "An HMAC key needs its shared secret."})
        if self.scheme == self.Scheme.IO_EVENTS and not self.recipient_client_id.strip():
            raise ValidationError(
                {"recipient_client_id": "An I/O Events key needs the recipient client id of its registration."}
            )
        if self.scheme in (self.Scheme.ADOBE_RSA, self.Scheme.IO_EVENTS):
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            try:
                load_pem_public_key(self.public_key.strip().encode())
            except (ValueError, TypeError) as exc:
                raise ValidationError({"public_key": "Not a PEM public key (-----BEGIN PUBLIC KEY----- ...)."}) from exc


# An order known by its number only: "before" hooks fire before Commerce saves the order, so it has no entity
# id yet. Its record is keyed "#<increment id>" until Commerce confirms the order.
PLACEHOLDER_PREFIX = "#"
# A signed document that could not be read is parked as a record keyed "!<hash>" (of the document's kind and
# id, or of the body): no Commerce id starts with it, so it never takes the place of a real document.
UNREADABLE_PREFIX = "!"


class Record(models.Model):
    """One Commerce document (order, invoice or credit memo) on its way to Fusion. Business state lives here;
    broker messages only wake a worker up."""

    class Kind(models.TextChoices):
        ORDER = "order", "Order"
        INVOICE = "invoice", "Invoice"
        CREDIT_MEMO = "creditmemo", "Credit memo"
        UNKNOWN = "unknown", "Unknown (unreadable)"

    class State(models.TextChoices):
        RECEIVED = "received", "Received"
        RETRYING = "retrying", "Waiting to retry"
        INVOICE_POSTED = "invoice_posted", "AR document posted"
        JOURNAL_PENDING = "journal_pending", "In an open journal batch"
        POSTED = "posted", "Posted"
        LINKED = "linked", "Linked to the posted invoice"
        NEEDS_REVIEW = "needs_review", "Needs review"
        IGNORED = "ignored", "Ignored"

    # States from which a worker still has something to do.
    ACTIVE_STATES = (State.RECEIVED, State.RETRYING, State.INVOICE_POSTED)

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        BACKFILL = "backfill", "Backfill"
        MANUAL = "manual", "Manual"

    # Indexed through record_unique_document, which starts with the connection.
    connection = models.ForeignKey(Connection, on_delete=models.PROTECT, related_name="records", db_index=False)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    commerce_entity_id = models.CharField(max_length=64)
    commerce_number = models.CharField(max_length=64, blank=True, help_text="Commerce increment id, e.g. 000000123")
    commerce_order_id = models.CharField(
        max_length=64, blank=True, help_text="The order this invoice or credit memo belongs to"
    )
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.WEBHOOK)
    document = models.JSONField(help_text="The normalised SalesDocument")
    document_date = models.DateTimeField(null=True, blank=True)
    grand_total = models.DecimalField(max_digits=19, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)

    state = models.CharField(max_length=20, choices=State.choices, default=State.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    leased_by = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    resolution_hint = models.TextField(blank=True)
    outcome_unknown = models.BooleanField(
        default=False,
        help_text="The last create timed out or the connection dropped: look up before posting.",
    )

    plan = models.JSONField(null=True, blank=True, help_text="The last posting plan")
    posting_identities = models.JSONField(
        default=list,
        blank=True,
        help_text="Every (resource, number, source, business unit) a create was sent with: each is looked up "
        "before any new create, even after the mappings changed",
    )
    fusion_transaction_id = models.CharField(max_length=40, blank=True)
    fusion_transaction_number = models.CharField(max_length=60, blank=True)
    linked_record = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="linked_from", db_index=False
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    posted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "kind", "commerce_entity_id"], name="record_unique_document"),
        ]
        # Every index is paid for on each webhook's INSERT: only the ones a query needs. Plain btree indexes
        # (not db_index, which adds a LIKE-pattern twin for every CharField on PostgreSQL).
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="record_due_idx"),
            models.Index(fields=["commerce_number"], name="record_number_idx"),
            models.Index(fields=["commerce_order_id"], name="record_order_idx"),
            models.Index(fields=["fusion_transaction_number"], name="record_fusion_number_idx"),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.commerce_number or self.commerce_entity_id}"
