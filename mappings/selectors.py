"""Reads of the mapping rules that need some thought."""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from connector.models import Connection

from .models import SegmentLayout


def segment_layout_on(connection: Connection, day: date | None = None) -> tuple[tuple[str, ...], str]:
    """The segment names and delimiter of the connection's layout in effect on `day` (today by default);
    no names and "-" when it has none."""
    day = day or timezone.localdate()
    for layout in SegmentLayout.objects.filter(connection=connection, enabled=True).order_by("-effective_from"):
        if (layout.effective_from is None or layout.effective_from <= day) and (
            layout.effective_to is None or layout.effective_to >= day
        ):
            return layout.names, layout.delimiter
    return (), "-"
