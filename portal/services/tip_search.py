"""Full-text search over tips and their conversations.

One document per tip: what the tipster wrote and every message of the conversation.
SQLite (the embedded mode) keeps it in an FTS5 table whose rowid is the tip's id;
PostgreSQL in ``tip_search`` (a tsvector per tip under a GIN index). Both are made by
migration 0008 and are not in the models' metadata: neither has a portable
SQLAlchemy type, so the model-parity check leaves out :data:`SEARCH_TABLES`.

The index is kept current here, on every flush that inserts a tip or a message or
changes a tip's text, whatever code path added them. Not by triggers: SQLite's batch
migrations rebuild a table by copying it, which silently drops its triggers, and the
next migration that alters ``tips`` would leave the index stale.

A query is a list of words, each of which must occur (case does not matter). Words
are taken from the text, never its syntax: neither FTS5's query language nor
tsquery's operators reach the database from a user.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from portal.models import Tip, TipMessage

#: The search index and, on SQLite, the shadow tables FTS5 keeps beside it.
SEARCH_TABLES = frozenset(
    {
        "tip_search",
        "tip_search_config",
        "tip_search_content",
        "tip_search_data",
        "tip_search_docsize",
        "tip_search_idx",
    }
)
#: PostgreSQL's configuration without stemming or stop words: names, plates and
#: street numbers are what tips are searched for, in whatever language. (The same
#: name is written into the statements below and into migration 0008.)
TS_CONFIG = "simple"
MAX_TERMS = 16
_WORD = re.compile(r"\w+")


def search_terms(query: str) -> list[str]:
    """The words of a search, lower-cased, at most :data:`MAX_TERMS`."""
    return [word.lower() for word in _WORD.findall(query or "")][:MAX_TERMS]


def matching_tip_ids(dialect: str, terms: list[str]) -> sa.Select[Any]:
    """The ids of the tips whose document holds every one of ``terms``."""
    if dialect == "postgresql":
        tsquery = sa.func.plainto_tsquery(
            sa.literal_column(f"'{TS_CONFIG}'::regconfig"), " ".join(terms)
        )
        return (
            sa.select(sa.column("tip_id"))
            .select_from(sa.table("tip_search"))
            .where(sa.column("document").op("@@")(tsquery))
        )
    # FTS5: each word as a quoted string, joined by implicit AND. \w+ holds no quote.
    match = " ".join(f'"{term}"' for term in terms)
    return (
        sa.select(sa.literal_column("rowid"))
        .select_from(sa.table("tip_search"))
        .where(sa.literal_column("tip_search").op("MATCH")(match))
    )


def _index_tip(connection: Connection, tip_id: int, text: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "INSERT INTO tip_search (tip_id, document)"
                " VALUES (:id, to_tsvector('simple', :text))"
                " ON CONFLICT (tip_id) DO UPDATE SET document = excluded.document"
            ),
            {"id": tip_id, "text": text},
        )
    else:
        connection.execute(sa.text("DELETE FROM tip_search WHERE rowid = :id"), {"id": tip_id})
        connection.execute(
            sa.text("INSERT INTO tip_search (rowid, document) VALUES (:id, :text)"),
            {"id": tip_id, "text": text},
        )


def _append(connection: Connection, tip_id: int, text: str) -> None:
    if connection.dialect.name == "postgresql":
        statement = (
            "UPDATE tip_search SET document = document ||"
            " to_tsvector('simple', :text) WHERE tip_id = :id"
        )
    else:
        statement = (
            "UPDATE tip_search SET document = document || char(10) || :text WHERE rowid = :id"
        )
    connection.execute(sa.text(statement), {"id": tip_id, "text": text})


def _document(connection: Connection, tip: Tip) -> str:
    bodies = connection.execute(
        sa.select(TipMessage.body).where(TipMessage.tip_id == tip.id).order_by(TipMessage.id)
    ).scalars()
    return "\n".join([tip.body, *bodies])


@event.listens_for(Session, "after_flush")
def _keep_index_current(session: Session, flush_context: Any) -> None:
    """After the rows are written (ids exist), in the same transaction: the index
    commits or rolls back with them. ``session.new`` still lists what this flush
    inserted."""
    new_tips = [obj for obj in session.new if isinstance(obj, Tip)]
    new_messages = [obj for obj in session.new if isinstance(obj, TipMessage)]
    edited = [
        obj
        for obj in session.dirty
        if isinstance(obj, Tip) and sa.inspect(obj).attrs.body.history.has_changes()
    ]
    deleted = [obj for obj in session.deleted if isinstance(obj, Tip)]
    if not (new_tips or new_messages or edited or deleted):
        return
    connection = session.connection()
    for tip in new_tips:
        _index_tip(connection, tip.id, tip.body)
    for message in sorted(new_messages, key=lambda m: m.id):
        _append(connection, message.tip_id, message.body)
    for tip in edited:
        _index_tip(connection, tip.id, _document(connection, tip))
    for tip in deleted:
        if connection.dialect.name != "postgresql":  # PostgreSQL: ON DELETE CASCADE
            connection.execute(sa.text("DELETE FROM tip_search WHERE rowid = :id"), {"id": tip.id})
