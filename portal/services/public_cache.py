"""What the public site renders, kept for a few seconds in each web process.

An appeal that goes viral is asked for hundreds of times a second, and every answer
would be the same page built again: two queries loading the appeal, its clips, their
renditions and approvals, and a template. So a web process keeps each page it built,
keyed on the *public generation* (``public_state.generation``, one row), which every
commit that changes what a page can show raises: an appeal, a clip it shows, a
version, a rendition, an approval, a case, an agency (the session events below, for
the web processes and the workers alike). A process reads the generation at most
once a second and uses a kept page only if it was built under the current one; so a
withdrawal, a revoked approval or a re-render is seen by the process that made it
at once and by every other within a second, not a cache's lifetime later.

The generation is raised *after* the commit, in a statement of its own: the row is
never locked for the length of someone's transaction, and a request that read the
old generation and then the new data keeps a page newer than its key, never older.
A raise that fails (the database gone that very moment) is logged; kept pages then
expire on their own after :data:`TTL_S`, which also bounds what changes with time
alone (this week's appeals).

Only pages whose address is one of the site's own (a known channel, a known
language, nothing else in the query) are kept, so a visitor cannot fill the cache
with addresses of their own making; a search is never kept. Nothing about a visitor
is in a key or a page.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context
from sqlalchemy import Engine, event, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from portal.extensions import db
from portal.models import (
    Agency,
    Appeal,
    AppealClip,
    Approval,
    Case,
    ClipVersion,
    PublicState,
    Rendition,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

# What a public page shows comes from these; a change to any of them is a new
# generation.
PUBLIC_MODELS = (Agency, Appeal, AppealClip, Approval, Case, ClipVersion, Rendition)
# A kept page is used for at most as long as a proxy may keep it (PAGE_CACHE),
# whatever the generation says.
TTL_S = 60.0
# Pages kept per web process (an appeal page is about 10 KB): the least recently
# used go first.
MAX_ENTRIES = 1000
# How often a web process reads the generation: a change made by another process is
# seen within this time (the process that made it sees it at once).
GENERATION_READ_S = 1.0

_CHANGED = "tattletale.public_changed"
_GENERATION = select(PublicState.generation).where(PublicState.id == 1)


class _Kept:
    """A bounded, thread-safe map of keys to values that expire."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl = ttl
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] < time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class _Process:
    """One app's kept pages in this process, and its generation as last read."""

    def __init__(self) -> None:
        self.kept = _Kept(TTL_S, MAX_ENTRIES)
        self.read: tuple[int, float] = (0, float("-inf"))  # (generation, when)


_EXTENSION = "tattletale_public_cache"


def _process() -> _Process:
    return current_app.extensions[_EXTENSION]


def generation() -> int:
    """The public generation (0 before the first change), read from the database at
    most once per :data:`GENERATION_READ_S` by each process; at once after this
    process raised it."""
    process = _process()
    value, read_at = process.read
    now = time.monotonic()
    if now - read_at >= GENERATION_READ_S:
        value = db.session.execute(_GENERATION).scalar() or 0
        process.read = (value, now)
    return value


def cached(key: tuple[Hashable, ...], build: Callable[[], T]) -> T:
    """``build()``'s value for ``key`` under the current generation: kept from an
    earlier request of this process, or built now and kept. What ``build`` raises
    (NotFound for a page that is not public) is raised, and nothing is kept."""
    full = (generation(), *key)
    kept = _process().kept
    value = kept.get(full)
    if value is None:
        value = build()
        kept.put(full, value)
    return value


def raise_generation(session: Session) -> None:
    """A new generation, in a statement of its own (not the caller's transaction)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    with engine.begin() as connection:
        raised = connection.execute(
            update(PublicState)
            .where(PublicState.id == 1)
            .values(generation=PublicState.generation + 1)
        )
        if raised.rowcount:
            return
    try:
        with engine.begin() as connection:  # a schema made without the migrations' row
            connection.execute(insert(PublicState).values(id=1, generation=1))
    except IntegrityError:
        raise_generation(session)  # another process made the row first


def _mark(session: Session) -> None:
    session.info[_CHANGED] = True


def _after_flush(session: Session, flush_context: UOWTransaction) -> None:
    # The session's new, dirty and deleted still show what this flush wrote.
    for objects in (session.new, session.dirty, session.deleted):
        if any(isinstance(obj, PUBLIC_MODELS) for obj in objects):
            _mark(session)
            return


def _on_execute(state: ORMExecuteState) -> None:
    # UPDATE and DELETE statements of the ORM (``update(ClipVersion)...``) write
    # without the unit of work.
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    mapper = state.bind_mapper
    if mapper is not None and issubclass(mapper.class_, PUBLIC_MODELS):
        _mark(state.session)


def _after_commit(session: Session) -> None:
    if not session.info.pop(_CHANGED, False):
        return
    if has_app_context() and _EXTENSION in current_app.extensions:
        _process().read = (0, float("-inf"))  # this process reads the new one next
    try:
        raise_generation(session)
    except Exception:  # noqa: BLE001 - the caller's commit is done; kept pages expire
        log.warning(
            "the public generation could not be raised; public pages kept by the web "
            "processes expire within %s s",
            TTL_S,
            exc_info=True,
        )


def _after_rollback(session: Session) -> None:
    session.info.pop(_CHANGED, None)


def init_app(app: Flask) -> None:
    """The app's kept pages; and listen to every session's commits (once per
    process, however many apps)."""
    app.extensions[_EXTENSION] = _Process()
    for name, listener in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _on_execute),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)
