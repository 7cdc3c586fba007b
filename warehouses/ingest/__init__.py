"""Executing runs: a stored payload -> parsed, normalized, applied and recorded batch by batch."""
