"""Re-encrypt every stored secret under the current key after `OKAERI_SECRET_KEY` was rotated.

A stored secret is any column whose name ends in `_encrypted` (platform tokens, refresh tokens,
channel credentials). Rows are rewritten in batches; a value no configured key can decrypt is
counted and left as it is, so a wrong key list never destroys a token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Column, Table, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import SQLModel

__all__ = ["Rotated", "encrypted_columns", "reencrypt_all"]

BATCH = 500


class Rotating(Protocol):
    """What re-encryption needs of `plugin.crypto.TokenCipher`."""

    def rotate(self, ciphertext: str) -> str: ...


@dataclass(frozen=True)
class Rotated:
    """What one rotation rewrote."""

    rewritten: int
    unreadable: int


def encrypted_columns() -> list[tuple[Table, Column[str]]]:
    """Every `(table, column)` holding an encrypted secret, by the `_encrypted` naming rule."""
    found = []
    for table in SQLModel.metadata.sorted_tables:
        for column in table.columns:
            if column.name.endswith("_encrypted"):
                found.append((table, column))
    return found


def reencrypt_all(sessions: sessionmaker[Session], cipher: Rotating) -> Rotated:
    """Rewrite every non-empty encrypted value under the cipher's current key."""
    rewritten = unreadable = 0
    for table, column in encrypted_columns():
        key = next(iter(table.primary_key.columns))
        after = None
        while True:
            with sessions() as session:
                query = select(key, column).where(column != "").order_by(key).limit(BATCH)
                if after is not None:
                    query = query.where(key > after)
                rows = session.execute(query).all()
                if not rows:
                    break
                for row_id, value in rows:
                    try:
                        fresh = cipher.rotate(value)
                    except ValueError:
                        unreadable += 1
                        continue
                    session.execute(update(table).where(key == row_id).values({column.name: fresh}))
                    rewritten += 1
                session.commit()
                after = rows[-1][0]
    return Rotated(rewritten, unreadable)
