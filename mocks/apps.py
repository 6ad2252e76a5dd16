from django.apps import AppConfig


class MocksConfig(AppConfig):
    """Only the management commands mock_fusion and mock_commerce; no models."""

    name = "mocks"
    verbose_name = "Mock systems"
