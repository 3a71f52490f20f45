"""Services behind the merchant console: the one switch, per-preset settings, previews."""
