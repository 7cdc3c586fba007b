"""Operator admin for the sources side. Django imports this package; each module registers its
models: feeds (warehouses, feeds), runs (runs, rejected records), records (customs, interchanges,
retractions)."""

from warehouses.admin import feeds, records, runs

__all__ = ["feeds", "records", "runs"]
