"""Observations: event lists, times and field-of-view coordinates."""

from .events import event_coordinates

__all__ = ["event_coordinates"]
