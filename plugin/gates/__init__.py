"""The gates every message passes (consent, idempotency, cap, quiet hours, holdout, stock) and their decision tokens."""
