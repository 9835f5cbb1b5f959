"""Benchmarks of the tip queue on PostgreSQL; prints ``name: figure`` lines, then
targets and verdicts. Exits 1 when a target is missed.

    python bench/queue_bench.py [--quick] [--runs N] [--database-url URL]

Creates a private database (dropped at the end), builds it with the migrations, and
bulk-loads 1,000,000 tips across 2,000 cases of one agency with generate_series
(100,000 across 200 with --quick), their search documents and statistics. Then times
the real service (portal.services.tip_queue.list_queue, as the page and the API call
it) for:

- queue_first_page_p95_ms: a supervisor's first page filtered by status;
- queue_deep_page_p95_ms: the same filter, a page 50,000 tips deep (5,000 with
  --quick), reached by its cursor;
- tip_search_p95_ms: searches for a rare word (a plate seen in 1 tip in 5,000), two
  words together, and a common word.

The first and deep pages are measured interleaved, so the machine's load weighs on
both alike. EXPLAIN of each query is checked for the indexes it must use.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from targets import target_met, verdict  # noqa: E402

from config import load_settings, normalise_database_url  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import db  # noqa: E402
from portal.models import Agency, Case, CaseAssignment, Role, User, UserRole  # noqa: E402
from portal.models.base import utcnow  # noqa: E402
from portal.services.tip_queue import TipQuery, filtered_tips, list_queue  # noqa: E402

TARGETS = {
    "queue_first_page_p95_ms": ("<", 100.0),
    "queue_deep_page_p95_ms": ("<", 100.0),
    "queue_deep_to_first_ratio": ("<=", 2.0),
    "tip_search_p95_ms": ("<", 200.0),
    "queue_plans_use_indexes": ("==", 1.0),
}
DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WORDS = [
    "red", "blue", "white", "black", "silver", "van", "car", "truck", "bike", "man",
    "woman", "kids", "hoodie", "cap", "jacket", "corner", "park", "store", "alley", "night",
]  # fmt: skip
STATUSES = ["new", "new", "new", "reviewing", "actionable", "no_value", "closed", "new"]
CHANNELS = ["web", "facebook", "instagram", "x", "qr", "nextdoor"]


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[-1] if len(samples) >= 2 else samples[0]


def make_people_and_cases(cases: int) -> None:
    """The agency, its staff and cases, through the models (a few thousand rows)."""
    agency = Agency(name="Bench PD", slug="bench")
    staff = {
        role: User(
            agency=agency,
            email=f"{role.value}@bench.example",
            display_name=role.value,
            password_hash="!",  # noqa: S106  (nobody signs in: no hash matches "!")
            role_rows=[UserRole(role=role.value)],
        )
        for role in (Role.OFFICER, Role.SUPERVISOR, Role.DETECTIVE)
    }
    db.session.add_all([agency, *staff.values()])
    rows = [
        Case(agency=agency, number=f"B-{n}", title=f"Case {n}", created_by=staff[Role.OFFICER])
        for n in range(1, cases + 1)
    ]
    db.session.add_all(rows)
    db.session.flush()
    # The detective works five cases.
    for case in rows[:5]:
        db.session.add(
            CaseAssignment(case_id=case.id, user_id=staff[Role.DETECTIVE].id, assigned_at=utcnow())
        )
    db.session.commit()


def load(connection: sa.Connection, tips: int, cases: int) -> None:
    """Bulk-load the tips with INSERT ... SELECT generate_series: the server makes
    the rows."""
    words = "ARRAY[" + ", ".join(f"'{w}'" for w in WORDS) + "]"
    statuses = "ARRAY[" + ", ".join(f"'{s}'" for s in STATUSES) + "]"
    channels = "ARRAY[" + ", ".join(f"'{c}'" for c in CHANNELS) + "]"

    def run(statement: str) -> None:
        connection.execute(sa.text(statement))

    run("SET synchronous_commit = off")
    run("SET maintenance_work_mem = '256MB'")
    batch = 100_000
    for start in range(0, tips, batch):
        stop = min(tips, start + batch)
        started = time.monotonic()
        # Every value in the statement is this script's own constant (S608 below).
        age = f"now() - make_interval(secs => ({tips} - g) * 30.0)"
        run(
            "INSERT INTO tips (number, agency_id, case_id, appeal_id, channel, body, seen_when,"  # noqa: S608
            " notify_by_email, receipt_hash, status, created_at, last_tipster_message_at,"
            " last_staff_message_at, awaiting_since, version, priority, public_id)"
            " SELECT 'T-' || lpad(g::text, 11, '0'), (SELECT id FROM agencies),"
            f" (SELECT min(id) FROM cases) + g % {cases}, NULL,"
            f" ({channels})[1 + g % {len(CHANNELS)}],"
            f" ({words})[1 + g % 20] || ' ' || ({words})[1 + (g / 20) % 20]"
            f" || ' seen near the ' || ({words})[1 + (g / 400) % 20]"
            " || ', plate P' || (g % 5000) || ', tip ' || g,"
            f" '', false, repeat('0', 64), ({statuses})[1 + g % 8], {age}, NULL,"
            " CASE WHEN g % 3 = 0 THEN now() END,"
            f" CASE WHEN g % 3 <> 0 THEN {age} END,"
            " 1, g % 4, md5('tip' || g)"
            f" FROM generate_series({start + 1}, {stop}) g"
        )
        print(f"  loaded {stop:,} tips ({time.monotonic() - started:.1f} s)", file=sys.stderr)
    started = time.monotonic()
    # What portal/services/tip_search.py writes for each tip, in one statement.
    run(
        "INSERT INTO tip_search (tip_id, document) SELECT id, to_tsvector('simple', body) FROM tips"
    )
    print(f"  search documents ({time.monotonic() - started:.1f} s)", file=sys.stderr)


def vacuum(url: str) -> None:
    """What autovacuum does after a bulk load: statistics, the visibility map, and
    the GIN index's pending list merged (measured: until then every search reads
    the pending list, and the planner shuns the index)."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    engine.dispose()


def timed(call: Any) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def plan_of(statement: Any) -> str:
    compiled = statement.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True})
    rows = db.session.execute(sa.text(f"EXPLAIN {compiled}")).scalars()
    return "\n".join(rows)


def measure(user: User, runs: int, deep: int) -> dict[str, float]:
    query = TipQuery(status="new")
    ordered = (
        filtered_tips(user, query)
        .with_only_columns(sa.literal_column("tips.public_id"))
        .order_by(sa.text("tips.created_at DESC, tips.id DESC"))
    )
    cursor = db.session.scalar(ordered.offset(deep - 1).limit(1))
    assert cursor is not None, "not that many tips"
    first_page = list_queue(user, query)
    deep_page = list_queue(user, query, after=cursor)
    assert len(first_page.tips) == 50 and len(deep_page.tips) == 50
    assert first_page.tips[0].created_at > deep_page.tips[0].created_at
    first, deeper = [], []
    for _ in range(runs):
        db.session.expunge_all()
        first.append(timed(lambda: list_queue(user, query)))
        db.session.expunge_all()
        deeper.append(timed(lambda: list_queue(user, query, after=cursor)))
    searches = [TipQuery(q="P1234"), TipQuery(q="red van"), TipQuery(q="hoodie")]
    found = {q.q: len(list_queue(user, q).tips) for q in searches}
    print(f"  search results on the first page: {found}", file=sys.stderr)
    assert all(found.values()), found
    search = []
    for _ in range(runs):
        for q in searches:
            db.session.expunge_all()
            search.append(timed(lambda q=q: list_queue(user, q)))
    # The plans: the status keyset index for the pages, the GIN index for a rare word.
    plans = {
        "first page": plan_of(
            filtered_tips(user, query)
            .order_by(sa.text("tips.created_at DESC, tips.id DESC"))
            .limit(51)
        ),
        "search": plan_of(
            filtered_tips(user, TipQuery(q="P1234"))
            .order_by(sa.text("tips.created_at DESC, tips.id DESC"))
            .limit(51)
        ),
    }
    for name, plan in plans.items():
        print(f"  plan of the {name}:\n    " + plan.replace("\n", "\n    "), file=sys.stderr)
    # Which index of tips serves an order is the planner's choice; a sequential
    # scan of tips, or a sort of all matching rows, is what must not appear.
    uses = all(
        "Seq Scan on tips" not in plan and "Index" in plan and not plan.startswith("Sort")
        for plan in plans.values()
    )
    return {
        "queue_first_page_p95_ms": p95(first),
        "queue_deep_page_p95_ms": p95(deeper),
        "queue_deep_to_first_ratio": p95(deeper) / p95(first),
        "tip_search_p95_ms": p95(search),
        "queue_first_page_median_ms": statistics.median(first),
        "queue_deep_page_median_ms": statistics.median(deeper),
        "tip_search_median_ms": statistics.median(search),
        "queue_plans_use_indexes": 1.0 if uses else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 tips over 200 cases")
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TATTLETALE_BENCH_DATABASE_URL", DEFAULT_URL),
        help="a PostgreSQL server to create the private database on",
    )
    parser.add_argument(
        "--keep-database", action="store_true", help="leave the database for EXPLAIN by hand"
    )
    args = parser.parse_args()
    tips, cases, deep = (100_000, 200, 5_000) if args.quick else (1_000_000, 2_000, 50_000)
    server_url = normalise_database_url(args.database_url)
    name = f"tt_queue_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        instance = Path(f"/tmp/{name}")
        instance.mkdir()
        settings = replace(
            load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_LOG_LEVEL": "WARNING"}),
            database_url=url,
            instance_path=instance,
        )
        app = create_app(settings)
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            started = time.monotonic()
            make_people_and_cases(cases)
            with db.engine.begin() as connection:
                load(connection, tips, cases)
            vacuum(url)
            print(f"  loaded in {time.monotonic() - started:.0f} s", file=sys.stderr)
            supervisor = db.session.scalar(
                sa.select(User).where(User.email == "supervisor@bench.example")
            )
            assert supervisor is not None and Role.SUPERVISOR in supervisor.roles
            figures = measure(supervisor, max(5, args.runs), deep)
            detective = db.session.scalar(
                sa.select(User).where(User.email == "detective@bench.example")
            )
            assert detective is not None
            figures["queue_detective_first_page_p95_ms"] = p95(
                [timed(lambda: list_queue(detective, TipQuery())) for _ in range(10)]
            )
            db.session.remove()
            db.engine.dispose()
    finally:
        if args.keep_database:
            print(f"  kept database {name}: drop it when done", file=sys.stderr)
        else:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        import shutil

        shutil.rmtree(f"/tmp/{name}", ignore_errors=True)
    for key, value in figures.items():
        print(f"{key}: {value:.3f}")
    for key in TARGETS:
        print(verdict(TARGETS, key, figures[key]))
    return 0 if all(target_met(TARGETS, key, figures[key]) for key in TARGETS) else 1


if __name__ == "__main__":
    sys.exit(main())
