"""Which LINE user is which shop customer, per account, and whether they follow it.

Two ways in, never a guess:
- the platform knows the customer's LINE user (ColorMe's `line_uid`, synced as
  `Customer.line_user_id`): linked directly to the shop's first account;
- anyone else gets a signed one-time link by mail (`issue_code`); its page tells them to send the
  code to the account inside LINE, and the webhook of that account (signed by LINE, so the userId
  is LINE's word) redeems it (`redeem_code`). A code names one customer of one shop and one account
  of that shop; it works once, before it expires, and never links a LINE user already linked to
  another customer of the account, nor a customer already linked to another LINE user.

Follow and unfollow (the webhooks) keep `following`; an unfollow also puts the address on the
suppression list (a push to a blocked user answers 200 and delivers nothing), a follow takes it off.
"""
from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, event, exists, literal, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col

from plugin.clock import as_utc
from plugin.storage.models import Customer, LineAccount, LineLink, LineLinkCode, LineScenarioAccount, Suppression
from plugin.storage.upsert import insert_ignore, table_of

__all__ = ["shop_accounts", "chosen_account_id", "set_scenario_account", "link_platform_customers", "issue_code", "redeem_code",
           "find_code", "set_following", "Redeemed", "CODE_LIFETIME", "CODE_PATTERN", "link_of"]

CODE_LIFETIME = timedelta(days=7)
CODE_PATTERN = re.compile(r"OKAERI-([A-Z2-9]{10})")  # what the customer sends inside LINE
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read from a screen and typed, sometimes


class Redeemed(StrEnum):
    linked = "linked"
    unknown = "unknown"  # no such code for this account (or another shop's)
    used = "used"
    expired = "expired"
    user_taken = "user_taken"  # this LINE user is another customer's on this account
    customer_taken = "customer_taken"  # this customer is linked to another LINE user on this account


_ACCOUNTS = "okaeri.line.accounts"


def shop_accounts(session: Session, shop_id: int) -> list[LineAccount]:
    """The shop's LINE accounts, oldest first; read once per transaction of `session` (a tick
    asks once to link customers and once per preset it plans: most shops have none, and each
    look-up was a statement of every tick). Accounts changed in this session are read afresh."""
    transaction = session.get_transaction()
    memo = session.info.get(_ACCOUNTS)
    if memo is not None and transaction is not None and memo[0] is transaction and memo[1] == shop_id \
            and not any(isinstance(o, LineAccount) for o in (*session.new, *session.dirty, *session.deleted)):
        return list(memo[2])
    accounts = list(session.execute(select(LineAccount).where(col(LineAccount.shop_id) == shop_id)
                                    .order_by(col(LineAccount.id))).scalars())
    session.info[_ACCOUNTS] = (session.get_transaction(), shop_id, tuple(accounts))
    return accounts


@event.listens_for(OrmSession, "after_flush")
def _forget_accounts(session: OrmSession, _context: object) -> None:
    session.info.pop(_ACCOUNTS, None)  # what was flushed may be an account of the shop


def chosen_account_id(session: Session, shop_id: int, scenario_key: str) -> int | None:
    return session.execute(select(col(LineScenarioAccount.account_id)).where(
        col(LineScenarioAccount.shop_id) == shop_id, col(LineScenarioAccount.scenario_key) == scenario_key)).scalar()


def set_scenario_account(session: Session, shop_id: int, scenario_key: str, account_id: int | None) -> None:
    """The account a scenario sends from (None: the shop's first); one of the shop's own only."""
    session.execute(delete(LineScenarioAccount).where(col(LineScenarioAccount.shop_id) == shop_id,
                                                      col(LineScenarioAccount.scenario_key) == scenario_key))
    if account_id is not None:
        account = session.get(LineAccount, account_id)
        if account is None or account.shop_id != shop_id:
            raise ValueError("not an account of this shop")
        session.add(LineScenarioAccount(shop_id=shop_id, scenario_key=scenario_key, account_id=account_id))
    session.commit()


def link_platform_customers(session: Session, shop_id: int, now: datetime) -> int:
    """Link every customer whose platform knows their LINE user (and who is not linked yet) to the
    shop's first account, in one INSERT … SELECT; how many were new. A LINE user another customer
    already has on that account is left alone (either unique key refuses it)."""
    accounts = shop_accounts(session, shop_id)
    if not accounts:
        return 0
    account_id = accounts[0].id
    links, customers = table_of(LineLink), table_of(Customer).c
    taken = exists().where(links.c.account_id == account_id,
                           or_(links.c.customer_id == customers.id, links.c.line_user_id == customers.line_user_id))
    source = select(literal(shop_id), literal(account_id), customers.id, customers.line_user_id, true(), literal("platform"),
                    literal(now, links.c.linked_at.type), literal(now, links.c.changed_at.type)).where(
        customers.shop_id == shop_id, customers.line_user_id.is_not(None), customers.line_user_id != "",
        customers.deleted_at.is_(None), ~taken)
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    insert = dialect.insert(links).from_select(
        ["shop_id", "account_id", "customer_id", "line_user_id", "following", "source", "linked_at", "changed_at"], source)
    # RETURNING, not rowcount: psycopg reports -1 for this INSERT … SELECT on PostgreSQL
    linked = len(session.execute(insert.on_conflict_do_nothing().returning(links.c.customer_id)).all())
    session.commit()
    return linked


def issue_code(session: Session, account: LineAccount, customer: Customer, now: datetime) -> str:
    """A one-time code for this customer and account of the same shop (the mail's signed link carries it)."""
    if customer.shop_id != account.shop_id:
        raise ValueError("the customer and the account belong to different shops")
    code = "".join(secrets.choice(_ALPHABET) for _ in range(10))
    session.add(LineLinkCode(code=code, shop_id=account.shop_id, account_id=account.id or 0, customer_id=customer.id or 0,
                             expires_at=now + CODE_LIFETIME))
    session.commit()
    return code


def find_code(session: Session, code: str) -> LineLinkCode | None:
    return session.get(LineLinkCode, code)


def redeem_code(session: Session, account: LineAccount, user_id: str, code: str, now: datetime) -> Redeemed:
    """A LINE user of `account` sent `code`: link them to the code's customer if every rule allows."""
    row = session.get(LineLinkCode, code)
    if row is None or row.account_id != account.id or row.shop_id != account.shop_id:
        return Redeemed.unknown
    if row.used_at is not None:
        return Redeemed.used
    if _aware(row.expires_at) <= now:
        return Redeemed.expired
    customer = session.get(Customer, row.customer_id)
    if customer is None or customer.shop_id != account.shop_id:
        return Redeemed.unknown
    mine = link_of(session, account.id or 0, user_id)
    if mine is not None and mine.customer_id != customer.id:
        return Redeemed.user_taken
    theirs = session.execute(select(LineLink).where(col(LineLink.account_id) == account.id,
                                                    col(LineLink.customer_id) == customer.id)).scalar_one_or_none()
    if theirs is not None and theirs.line_user_id != user_id:
        return Redeemed.customer_taken
    row.used_at = now
    session.add(row)
    if mine is None:
        session.add(LineLink(shop_id=account.shop_id, account_id=account.id or 0, customer_id=customer.id or 0,
                             line_user_id=user_id, following=True, source="code", linked_at=now, changed_at=now))
    session.commit()
    return Redeemed.linked


def link_of(session: Session, account_id: int, user_id: str) -> LineLink | None:
    return session.execute(select(LineLink).where(col(LineLink.account_id) == account_id,
                                                  col(LineLink.line_user_id) == user_id)).scalar_one_or_none()


def set_following(session: Session, account: LineAccount, user_id: str, following: bool, now: datetime) -> LineLink | None:
    """A follow (added or unblocked) or unfollow (blocked) of a linked user; None for a user nobody linked."""
    link = link_of(session, account.id or 0, user_id)
    if link is None:
        return None
    session.execute(update(LineLink).where(col(LineLink.id) == link.id).values(following=following, changed_at=now))
    address = f"{account.id}:{user_id}"
    if following:
        session.execute(delete(Suppression).where(col(Suppression.shop_id) == account.shop_id,
                                                  col(Suppression.channel) == "line", col(Suppression.address) == address,
                                                  col(Suppression.reason) == "blocked"))
    else:
        insert_ignore(session, table_of(Suppression), [{"shop_id": account.shop_id, "channel": "line", "address": address,
                                                        "reason": "blocked", "created_at": now}],
                      ["shop_id", "channel", "address"])
    session.commit()
    session.refresh(link)
    return link


def _aware(moment: datetime) -> datetime:
    return as_utc(moment)
