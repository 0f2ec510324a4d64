"""The event hour of each JSON payload of a landing batch, read in C (see `_scan.c`)."""

from landing_scan._scan import FALLBACK, MOMENT, NOT_READ, event_hours

__all__ = ["FALLBACK", "MOMENT", "NOT_READ", "event_hours"]
