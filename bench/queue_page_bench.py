"""What one request of the detective's tip queue page costs, on PostgreSQL with tens
of thousands of tips; prints ``name: figure`` lines, then targets and verdicts.

    python bench/queue_page_bench.py [--quick] [--before REV] [--profile] [--runs N]

Makes a private database on 127.0.0.1:5432 and the environment the flood bench's
stack uses (bench/stack.py: production settings, Redis rate limits; dropped after),
migrates it, and fills it like bench/portal_seed.py does (one agency, a detective on
the viral appeal's case and a few others, 300 published appeals with their cases),
then 500 tips through the real intake and 30,000 more copied from them in SQL (half
with a name, a phone and an e-mail, encrypted like the intake's). Then signs the
detective in and asks ``GET /staff/tips`` (what tip_load_bench.py's flood reads),
each request in a process of its own so nothing one tree cached helps another:

- ``queue_page_ms``: the median time of a request, in the app (no socket);
- ``queue_page_queries``: SQL statements per request; ``queue_page_decrypts``:
  values decrypted per request (a queue row shows no contact detail).

With ``--before REV`` the same requests are made, interleaved, by the code of
git revision REV (checked out from this repository into a temporary directory,
against the same database), and ``queue_page_time_ratio`` is this tree's median
over REV's: the change's gain measured in one run. ``--profile`` prints cProfile's
top functions and EXPLAIN ANALYZE of every statement of one request, to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TIPS = 30_000
SEEDED_TIPS = 500
APPEALS = 300
TARGETS = {
    "queue_page_queries": ("<=", 12),
    "queue_page_decrypts": ("==", 0),
}


# -- the measuring process (run with one tree's code on sys.path) ------------------------


def measure(tree: Path, runs: int, profile: bool) -> dict[str, Any]:
    sys.path.insert(0, str(tree))
    import sqlalchemy as sa

    import portal
    from portal import create_app, keyring
    from portal.extensions import db

    assert Path(portal.__file__).resolve().is_relative_to(tree.resolve()), portal.__file__

    app = create_app()
    statements: list[tuple[str, Any]] = []
    decrypts = [0]
    real_decrypt = keyring.decrypt

    def counting_decrypt(*args: Any, **kwargs: Any) -> Any:
        decrypts[0] += 1
        return real_decrypt(*args, **kwargs)

    keyring.decrypt = counting_decrypt  # type: ignore[assignment]
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    login = client.get("/staff/login", base_url="https://localhost")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login.get_data(as_text=True))
    assert token, "no CSRF token on the login page"
    signed = client.post(
        "/staff/login",
        base_url="https://localhost",
        data={
            "email": "detective@bench.example",
            "password": "bench detective passphrase",
            "csrf_token": token[1],
        },
        # Flask-WTF checks an HTTPS form's referrer (the same origin).
        headers={"Referer": "https://localhost/staff/login"},
    )
    assert signed.status_code in (302, 303), signed.status_code

    def one() -> float:
        started = time.perf_counter()
        answer = client.get("/staff/tips", base_url="https://localhost")
        elapsed = (time.perf_counter() - started) * 1000
        assert answer.status_code == 200, answer.status_code
        assert answer.get_data(as_text=True).count('class="tip-row') == 50
        return elapsed

    with app.app_context():
        engine = db.engine

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    for _ in range(5):
        one()  # templates compiled, connections opened
    sa.event.listen(engine, "before_cursor_execute", record)
    statements.clear()
    decrypts[0] = 0
    one()
    per_request = list(statements)
    decrypted = decrypts[0]
    sa.event.remove(engine, "before_cursor_execute", record)
    times = [one() for _ in range(runs)]
    if profile:
        import cProfile
        import io
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(20):
            one()
        profiler.disable()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)
        print(out.getvalue(), file=sys.stderr)
        with engine.connect() as conn:
            for statement, params in per_request:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                plan = conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, params).scalars()
                print("--", statement.replace("\n", " ")[:300], file=sys.stderr)
                print("   " + "\n   ".join(plan), file=sys.stderr)
    return {
        "median_ms": statistics.median(times),
        "queries": len(per_request),
        "decrypts": decrypted,
    }


# -- the seed (this tree's code) ------------------------------------------------------------


def seed(tips: int) -> None:
    sys.path.insert(0, str(REPO))
    sys.path.insert(0, str(HERE))
    from flask_migrate import upgrade
    from portal_seed import PASSWORD, appeal_rows, fake_renditions, user
    from sqlalchemy import text

    from portal import create_app
    from portal.extensions import db
    from portal.models import Agency, Role, Tip
    from portal.services.cases import assign_detective
    from portal.services.passwords import hash_password
    from portal.services.tips import TipInput, submit_tip

    app = create_app()
    with app.app_context():
        upgrade(revision="heads")
        hashed = hash_password(PASSWORD)
        agency = Agency(name="Bench Police Department", slug="bench")
        db.session.add(agency)
        supervisor = user(agency, "supervisor@bench.example", Role.SUPERVISOR, hashed)
        detective = user(agency, "detective@bench.example", Role.DETECTIVE, hashed)
        officer = user(agency, "officer@bench.example", Role.OFFICER, hashed)
        db.session.flush()
        appeals = [
            appeal_rows(agency, officer, supervisor, n, fake_renditions(n)) for n in range(APPEALS)
        ]
        db.session.flush()
        for appeal in appeals[:5]:
            assign_detective(appeal.case, detective, actor=supervisor)
        for index in range(SEEDED_TIPS):
            contact = (
                {"name": "Pat Doe", "phone": "+1 555 0100", "email": "pat@example.org"}
                if index % 2
                else {}
            )
            submit_tip(
                TipInput(
                    body=f"Earlier tip {index}: I think I know him, he drives a red van.",
                    via="facebook",
                    **contact,
                ),
                agency=agency,
                appeal=appeals[index % 10],
            )
        db.session.commit()
        columns = [
            c.name for c in Tip.__table__.columns if c.name not in ("id", "number", "public_id")
        ]
        listed = ", ".join(columns)
        # Copies of the real tips, older than them, spread over the same appeals.
        db.session.execute(
            text(
                f"INSERT INTO tips (number, public_id, {listed})"  # noqa: S608 (our own names)
                f" SELECT 'b-' || lpad(g::text, 10, '0'), md5('bench tip ' || g),"
                f" {', '.join('t.' + c for c in columns)}"
                " FROM generate_series(1, :n) g JOIN (SELECT *,"
                " row_number() OVER (ORDER BY id) - 1 AS k FROM tips) t"
                f" ON t.k = g % {SEEDED_TIPS}"
            ),
            {"n": tips},
        )
        db.session.execute(
            text(
                "UPDATE tips SET created_at = created_at - make_interval(secs => id * 20.0),"
                " awaiting_since = CASE WHEN id % 3 = 0 THEN NULL"
                " ELSE created_at - make_interval(secs => id * 20.0) END,"
                " last_staff_message_at = CASE WHEN id % 3 = 0 THEN created_at END,"
                " status = (ARRAY['new','new','reviewing','actionable','closed'])[1 + id % 5],"
                " priority = id % 4 WHERE number LIKE 'b-%'"
            )
        )
        db.session.execute(
            text(
                "INSERT INTO tip_search (tip_id, document) SELECT id, to_tsvector('simple', body)"
                " FROM tips WHERE number LIKE 'b-%'"
            )
        )
        db.session.commit()
    with app.app_context():
        engine = db.engine.execution_options(isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))


# -- the run ---------------------------------------------------------------------------------


def checkout(rev: str, into: Path) -> Path:
    archive = into / "tree.tar"
    subprocess.run(["git", "-C", str(REPO), "archive", "-o", str(archive), rev], check=True)
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--before", help="a git revision to compare this tree with")
    parser.add_argument("--profile", action="store_true", help="cProfile and EXPLAIN ANALYZE")
    parser.add_argument("--runs", type=int, default=0)
    parser.add_argument("--tips", type=int, default=TIPS)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        # Before anything imports the portal: the tree measured is the one on the path.
        print(json.dumps(measure(Path(args.measure), args.runs, args.profile)))
        return 0
    sys.path.insert(0, str(HERE))
    import psycopg
    from stack import PG_ADMIN, Stack

    runs = args.runs or (20 if args.quick else 60)
    rounds = 2 if args.quick else 4
    stack = Stack(appeals=APPEALS)
    figures: dict[str, float] = {}
    try:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{stack.database}"')
        started = time.monotonic()
        subprocess.run(
            [sys.executable, __file__, "--tips", str(args.tips)],
            env={**stack.env, "QUEUE_PAGE_BENCH_SEED": "1"},
            cwd=REPO,
            check=True,
        )
        print(f"  seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)
        with tempfile.TemporaryDirectory(prefix="queue-page-") as tmp:
            trees = {"after": REPO}
            if args.before:
                trees["before"] = checkout(args.before, Path(tmp))
            samples: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for n in range(rounds):
                order = list(trees) if n % 2 == 0 else list(reversed(trees))
                for name in order:
                    profile = args.profile and n == 0
                    command = [
                        sys.executable,
                        __file__,
                        "--measure",
                        str(trees[name]),
                        "--runs",
                        str(runs),
                    ]
                    if profile:
                        command.append("--profile")
                        print(f"# profile of {name}", file=sys.stderr)
                    done = subprocess.run(
                        command,
                        env={**stack.env, "PYTHONPATH": str(trees[name])},
                        cwd=trees[name],
                        stdout=subprocess.PIPE,
                        text=True,
                        check=True,
                    )
                    samples[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        for name, got in samples.items():
            suffix = "" if name == "after" else "_before"
            figures[f"queue_page_ms{suffix}"] = statistics.median(x["median_ms"] for x in got)
            figures[f"queue_page_queries{suffix}"] = got[0]["queries"]
            figures[f"queue_page_decrypts{suffix}"] = got[0]["decrypts"]
        if "before" in samples:
            figures["queue_page_time_ratio"] = (
                figures["queue_page_ms"] / figures["queue_page_ms_before"]
            )
    finally:
        with contextlib.suppress(Exception):
            stack.close()
    from targets import report

    return report(TARGETS, figures)


if __name__ == "__main__":
    import os

    if os.environ.get("QUEUE_PAGE_BENCH_SEED"):
        seed(int(sys.argv[sys.argv.index("--tips") + 1]))
        sys.exit(0)
    sys.exit(main())
