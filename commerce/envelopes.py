"""Commerce webhook envelopes: which event a body is, what kind of document it carries, and where the entity is.

Three envelopes arrive:
* observer hooks `{"eventName": ..., "data": {"order"|"invoice"|"creditmemo": {...}, "data_object": {...}}}`;
* plugin hooks, the method arguments by name: `{"order": {...}}`, `{"entity": {...}}`, maybe `"result"`;
* Adobe I/O Events CloudEvents `{"specversion", "type": "com.adobe.commerce.observer.<event>", "data": {"value"}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ORDER, INVOICE, CREDIT_MEMO = "order", "invoice", "creditmemo"

# Hook and event names Commerce sends for orders, invoices and credit memos, with the document kind each one
# carries.
EVENT_KINDS: dict[str, str] = {
    "observer.sales_order_place_after": ORDER,
    "observer.sales_order_place_before": ORDER,
    "observer.sales_order_save_after": ORDER,
    "observer.sales_order_save_commit_after": ORDER,
    "plugin.magento.sales.api.order_management.place": ORDER,
    "plugin.sales.api.order_management.place": ORDER,  # SaaS spelling
    "observer.sales_order_invoice_save_after": INVOICE,
    "observer.sales_order_invoice_save_commit_after": INVOICE,
    "observer.sales_order_invoice_pay": INVOICE,
    "plugin.magento.sales.api.invoice_repository.create": INVOICE,
    "plugin.magento.sales.api.invoice_repository.save": INVOICE,
    "plugin.sales.api.invoice_repository.save": INVOICE,
    "observer.sales_order_creditmemo_save_after": CREDIT_MEMO,
    "observer.sales_order_creditmemo_save_commit_after": CREDIT_MEMO,
    "plugin.magento.sales.api.creditmemo_repository.create": CREDIT_MEMO,
    "plugin.magento.sales.api.creditmemo_repository.save": CREDIT_MEMO,
    "plugin.sales.api.creditmemo_repository.save": CREDIT_MEMO,
}
IO_EVENTS_PREFIX = "com.adobe.commerce."
_ENTITY_KEYS = {ORDER: ("order",), INVOICE: ("invoice",), CREDIT_MEMO: ("creditmemo", "credit_memo")}


class UnreadablePayload(ValueError):
    """Signed, but not a shape we understand. The delivery is kept for review with this reason."""


@dataclass(frozen=True)
class Envelope:
    event_name: str
    kind: str | None  # None: an event type we do not handle
    entity: dict[str, Any] | None
    event_id: str = ""  # the CloudEvent id, when there is one


def envelope_parse(payload: Any, *, hint: str = "") -> Envelope:
    """Find the event name, the document kind and the entity in a webhook body. `hint` is an event name the
    merchant put in the hook URL (?event=...), used when the body does not name its event (plugin hooks)."""
    if not isinstance(payload, dict):
        raise UnreadablePayload("the body is JSON but not an object")
    if "specversion" in payload and isinstance(payload.get("type"), str):
        return _cloud_event(payload)
    if isinstance(payload.get("eventName"), str):
        return _observer_event(payload)
    return _plugin_call(payload, hint)


def _cloud_event(payload: dict[str, Any]) -> Envelope:
    """An Adobe I/O Events CloudEvent: the entity is data.value."""
    name = payload["type"].removeprefix(IO_EVENTS_PREFIX)
    data = payload.get("data")
    entity = data.get("value") if isinstance(data, dict) else None
    kind = EVENT_KINDS.get(name)
    if kind and not isinstance(entity, dict):
        raise UnreadablePayload(f"{payload['type']} has no data.value object")
    return Envelope(name, kind, entity if isinstance(entity, dict) else None, str(payload.get("id") or ""))


def _observer_event(payload: dict[str, Any]) -> Envelope:
    """An observer hook: the entity is data.<kind> (or data.data_object)."""
    name = payload["eventName"]
    if not name.startswith(("observer.", "plugin.")):
        name = f"observer.{name}"
    kind = EVENT_KINDS.get(name)
    if kind is None:
        return Envelope(name, None, None)
    data = payload.get("data")
    if not isinstance(data, dict):
        raise UnreadablePayload(f"{name} has no data object")
    for key in (*_ENTITY_KEYS[kind], "data_object"):
        if isinstance(data.get(key), dict):
            return Envelope(name, kind, data[key])
    wanted = _ENTITY_KEYS[kind][0]
    raise UnreadablePayload(f"{name} carries no {kind} (looked for data.{wanted} and data.data_object)")


def _plugin_call(payload: dict[str, Any], hint: str) -> Envelope:
    """A plugin hook: the method's arguments by parameter name; an "after" plugin also gets the saved entity as
    "result" (with its entity_id, which a "before" plugin's argument does not have yet)."""
    result = payload.get("result") if isinstance(payload.get("result"), dict) else None
    for known, keys in _ENTITY_KEYS.items():
        for key in keys:
            if isinstance(payload.get(key), dict):
                name = hint if EVENT_KINDS.get(hint) == known else _plugin_name(known)
                argument = payload[key]
                if result is not None and str(result.get("entity_id") or "").strip() and "items" in result:
                    argument = result
                return Envelope(name, known, argument)
    entity = payload.get("entity") if isinstance(payload.get("entity"), dict) else result
    if isinstance(entity, dict):
        guessed = EVENT_KINDS.get(hint) or _guess_kind(entity)
        if guessed is None:
            raise UnreadablePayload("a plugin payload whose entity is neither an order, an invoice nor a credit memo")
        return Envelope(hint if EVENT_KINDS.get(hint) else _plugin_name(guessed), guessed, entity)
    if hint and hint not in EVENT_KINDS:
        return Envelope(hint[:150], None, None)
    raise UnreadablePayload("no eventName, no CloudEvent type and no order/invoice/creditmemo argument")


def _plugin_name(kind: str) -> str:
    return {
        ORDER: "plugin.magento.sales.api.order_management.place",
        INVOICE: "plugin.magento.sales.api.invoice_repository.save",
        CREDIT_MEMO: "plugin.magento.sales.api.creditmemo_repository.save",
    }[kind]


def _guess_kind(entity: Mapping[str, Any]) -> str | None:
    if any(k in entity for k in ("adjustment_positive", "adjustment_negative", "creditmemo_status")):
        return CREDIT_MEMO
    if "order_id" in entity and "customer_email" not in entity:
        return INVOICE
    if "customer_email" in entity or "increment_id" in entity:
        return ORDER
    return None
