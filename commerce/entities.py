"""Commerce customers and products as the sync from Fusion reads and writes them, parsed at the client's edge.

A customer PUT must send `email`, `firstname` and `lastname`, and whether Commerce keeps the custom attributes a
PUT leaves out is not settled (docs/reference/commerce.md §4.4): so a customer is read first and written back with
its required fields and every custom attribute it had, ours changed, and without `addresses` (which a PUT would
replace). A product PUT keeps what it omits, so only the changed attributes are sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from core.errors import PermanentError

# What a customer PUT sends back from the stored customer (Adobe's safe pattern; addresses left out).
CUSTOMER_KEPT_FIELDS = ("id", "email", "firstname", "lastname", "website_id", "group_id", "store_id")


def attribute_text(value: Any) -> str:
    """A custom attribute's value as text: a multiselect list joined with commas, none as ''."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ",".join(attribute_text(v) for v in value)
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def custom_attributes(entity: Mapping[str, Any]) -> dict[str, str]:
    """`custom_attributes: [{attribute_code, value}]` as {code: text}."""
    found: dict[str, str] = {}
    for item in entity.get("custom_attributes") or []:
        if isinstance(item, dict) and item.get("attribute_code"):
            found[str(item["attribute_code"])] = attribute_text(item.get("value"))
    return found


def attribute_list(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"attribute_code": code, "value": value} for code, value in values.items()]


def _text(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else str(value).strip()


@dataclass(frozen=True)
class CommerceCustomer:
    """A customer as GET /V1/customers/{id} answers it: what matching, the GL rules and a PUT need."""

    id: str
    email: str
    website_id: str
    group_id: str
    company: str
    attributes: Mapping[str, str]
    kept: Mapping[str, Any]  # the stored fields a PUT sends back (CUSTOMER_KEPT_FIELDS)

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> CommerceCustomer:
        customer_id = _text(answer.get("id"))
        if not customer_id:
            raise PermanentError("Commerce answered a customer without its id")
        extension = answer.get("extension_attributes")
        company = extension.get("company_attributes") if isinstance(extension, dict) else None
        return cls(
            id=customer_id,
            email=_text(answer.get("email")),
            website_id=_text(answer.get("website_id")),
            group_id=_text(answer.get("group_id")),
            company=_text(company.get("company_id")) if isinstance(company, dict) else "",
            attributes=custom_attributes(answer),
            kept={name: answer[name] for name in CUSTOMER_KEPT_FIELDS if answer.get(name) is not None},
        )

    @property
    def facts(self) -> dict[str, str]:
        """What the customer GL rules match on."""
        return {"email": self.email, "group_id": self.group_id, "company": self.company}

    def update_body(self, changes: Mapping[str, str]) -> dict[str, Any]:
        """The PUT body: the stored required fields, every custom attribute with `changes` applied."""
        merged = {**self.attributes, **changes}
        return {"customer": {**self.kept, "custom_attributes": attribute_list(merged)}}


@dataclass(frozen=True)
class CommerceProduct:
    """A product as the product search answers it: its SKU, catalogue place (for the GL rules) and attributes."""

    sku: str
    attribute_set_id: str
    category_ids: tuple[str, ...]
    attributes: Mapping[str, str]

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> CommerceProduct:
        sku = _text(answer.get("sku"))
        if not sku:
            raise PermanentError("Commerce answered a product without its SKU")
        extension = answer.get("extension_attributes")
        links = extension.get("category_links") if isinstance(extension, dict) else None
        categories: list[str] = []
        for link in links if isinstance(links, list) else []:
            category = _text(link.get("category_id")) if isinstance(link, dict) else ""
            if category and category not in categories:
                categories.append(category)
        attributes = custom_attributes(answer)
        if not categories and attributes.get("category_ids"):
            categories = [c for c in attributes["category_ids"].split(",") if c]
        return cls(
            sku=sku,
            attribute_set_id=_text(answer.get("attribute_set_id")),
            category_ids=tuple(categories),
            attributes=attributes,
        )

    @property
    def facts(self) -> dict[str, Any]:
        """What the product GL rules match on."""
        return {"attribute_set_id": self.attribute_set_id, "category_ids": list(self.category_ids)}
