"""From the outbox to a channel: claim a batch, re-check the gates, render with fresh stock, send, settle."""
