"""Reading EXPLAIN (ANALYZE, FORMAT JSON) plans in tests: which event partitions ran."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def partitions_executed(plan: Any, prefix: str = "shipments_trackingevent") -> Iterator[str]:
    """The relations named `prefix...` that the executed plan read (a node run at least once)."""
    if isinstance(plan, dict):
        name = plan.get("Relation Name", "")
        if name.startswith(prefix) and plan.get("Actual Loops", 0) > 0:
            yield name
        for value in plan.values():
            yield from partitions_executed(value, prefix)
    elif isinstance(plan, list):
        for item in plan:
            yield from partitions_executed(item, prefix)
