"""The mock Oracle Fusion Cloud ERP (see mocks.fusion.app). Independent of the connector's Fusion client: written
from Oracle's documentation of the REST API for Oracle Fusion Cloud Financials, never from the client code."""

from mocks.fusion.app import MockFusion
from mocks.fusion.erp import ErpJob, FusionFaults
from mocks.fusion.query import Clause, Collection, compare, parse_finder, parse_q
from mocks.fusion.seed import (
    BUSINESS_UNIT,
    SEED_COMBINATIONS,
    SEED_CUSTOMER_SITES,
    SEED_ITEMS,
    SEGMENTS,
)

__all__ = [
    "BUSINESS_UNIT",
    "SEED_COMBINATIONS",
    "SEED_CUSTOMER_SITES",
    "SEED_ITEMS",
    "SEGMENTS",
    "Clause",
    "Collection",
    "ErpJob",
    "FusionFaults",
    "MockFusion",
    "compare",
    "parse_finder",
    "parse_q",
]
