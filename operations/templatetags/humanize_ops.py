"""Tiny filters for the dashboard template."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template

register = template.Library()


@register.filter
def get(mapping: dict[str, Any], key: str) -> Any:
    return mapping.get(key)


@register.filter
def percent(value: float) -> str:
    return f"{value * 100:.1f}%"


@register.filter
def duration_short(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
