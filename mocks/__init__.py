"""Mock systems for development and tests, like stripe-mock: a mock Oracle Fusion (mocks.fusion) and a mock
Adobe Commerce (mocks.commerce) on the shared machinery of mocks.server, served by `manage.py mock_fusion` and
`manage.py mock_commerce`. Never part of production: settings install this app only with CONNECTOR_MOCKS=1
(the test settings always do).

The mocks are stand-ins written from the vendors' documentation. They import nothing of the connector (its
clients are what they test), and the Commerce mock does not import the Fusion mock."""
