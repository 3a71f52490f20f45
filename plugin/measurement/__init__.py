"""Tracking and measurement: signed links (open, click, unsubscribe), order attribution, reports."""
