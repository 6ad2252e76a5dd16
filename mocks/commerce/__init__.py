"""The mock Adobe Commerce (see mocks.commerce.app). Independent of the connector's Commerce client and of the
mock Fusion: written from Adobe's Commerce Web API documentation, never from the client code."""

from mocks.commerce.app import CommerceFaults, MockCommerce
from mocks.commerce.search import CONDITIONS, search

__all__ = ["CONDITIONS", "CommerceFaults", "MockCommerce", "search"]
