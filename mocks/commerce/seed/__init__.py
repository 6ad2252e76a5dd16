"""The mock Commerce's sample data, in the shapes the Adobe Commerce REST API answers. Each function returns new
dicts, so a reset starts from clean copies."""

from mocks.commerce.seed.catalog import STORE_CONFIGS, seed_products
from mocks.commerce.seed.customers import seed_customers
from mocks.commerce.seed.orders import seed_orders
from mocks.commerce.seed.sales import seed_creditmemos, seed_invoices

__all__ = ["STORE_CONFIGS", "seed_creditmemos", "seed_customers", "seed_invoices", "seed_orders", "seed_products"]
