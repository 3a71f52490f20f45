"""Storage: engine and sessions, the tables (SQLModel), migrations, bulk upserts, the outbox's queries, leases, consent."""
