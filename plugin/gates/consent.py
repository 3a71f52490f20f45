"""Gate 1, consent and suppression: only customers who opted in to the message's channel and
have an address on it; the suppression list (unsubscribed, bounced, blocked) always wins; a
customer the platform deleted (`deleted_at`, plugin.sync.deletions) gets nothing.
Filtered in SQL, so such customers never become messages; re-checked at delivery."""
from __future__ import annotations

from sqlalchemy import ColumnElement, exists, select
from sqlalchemy.sql import Subquery
from sqlmodel import col

from plugin.gates.base import Batch, Cancel, Gate, Tick, Verdict
from plugin.storage.models import Customer, Message, Suppression

__all__ = ["Consent"]


class Consent(Gate):
    name = "consent"

    def where(self, tick: Tick, candidates: Subquery) -> list[ColumnElement[bool]]:
        suppressed = exists().where(col(Suppression.shop_id) == tick.shop.id,
                                    col(Suppression.channel) == tick.channel.name,
                                    col(Suppression.address) == tick.channel.address())
        return [tick.channel.consented(), ~suppressed, col(Customer.deleted_at).is_(None)]

    def prepare(self, batch: Batch) -> None:
        batch.state[self.name] = set(batch.session.execute(
            select(col(Suppression.shop_id), col(Suppression.channel), col(Suppression.address)).where(
                col(Suppression.channel).in_({m.channel for m in batch.messages}),
                col(Suppression.address).in_({m.to_address for m in batch.messages}))).tuples())

    def recheck(self, batch: Batch, message: Message) -> Verdict | None:
        customer, channel = batch.customers.get(message.customer_id), batch.channels.get(message.channel)
        if customer is None or customer.deleted_at is not None or channel is None or not channel.accepts(customer) \
                or (message.shop_id, message.channel, message.to_address) in batch.state[self.name]:
            return Cancel("suppressed or no consent at delivery")
        return None
