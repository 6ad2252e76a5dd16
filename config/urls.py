from django.contrib import admin
from django.urls import path

from commerce.webhooks import commerce_webhook
from connector.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
    path("webhooks/commerce/<slug:slug>/", commerce_webhook, name="commerce-webhook"),
]
