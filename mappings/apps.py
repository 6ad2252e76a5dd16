from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "mappings"
