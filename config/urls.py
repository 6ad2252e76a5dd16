from django.contrib import admin
from django.urls import path

from commerce.webhooks import commerce_webhook
from connector.views import healthz
from sync.metrics_view import metrics

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics, name="metrics"),
    path("webhooks/commerce/<slug:slug>/", commerce_webhook, name="commerce-webhook"),
]
