"""Where a tip's time goes: the CPU one request costs the portal, in process, for the
tip form and for the bare insert that ``tip_intake_vs_bare_insert`` divides by
(bench/public_bench.py), and the tip's parts. A diagnostic, not a benchmark with a
target: it says how far the throughput ratio can go on this stack.

    python bench/tip_cost.py [--requests N]

The app is the benchmarks' (bench/portal_wsgi.py: PostgreSQL, Redis, the proof of
work off) on a database seeded by bench/portal_seed.py, driven through Flask's test
client, so what is measured is the app alone: no HTTP server, no load generator.
Both endpoints run in turn, interleaved in batches; each figure is the median of the
batches' CPU milliseconds per request (this process: the portal's Python, psycopg
and redis-py, not PostgreSQL's or Redis's own work). The parts are cProfile's
cumulative times of the functions named in ``PARTS``, as shares of the tip view's.

With a server and a load generator sharing the machine, the throughput ratio is
bounded by about bare/tip of the whole cost of a request (these figures plus what the
server, the database and the client spend on each): at ``tip_cpu_ms`` several times
``bare_insert_cpu_ms`` a ratio of 0.7 needs the tip's own work cut to a fraction.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import time
from typing import Any

from stack import BENCH, PG_ADMIN, REPO, Stack

CSRF = re.compile(rb'name="csrf_token" type="hidden" value="([^"]+)"')
BATCH = 100
# (share name, the function's file suffix and name in the profile)
PARTS = [
    ("rate_limit", "portal/http/ratelimit.py", "count_public"),
    ("form_and_csrf", "portal/public/views.py", "_validate_keeping_text"),
    ("tip_and_number", "portal/services/tips.py", "with_a_free_number"),
    ("tip_rows_flush", "portal/services/tips.py", "submit_tip_to"),
    ("drafts_taken", "portal/services/attachments.py", "take_drafts"),
    ("receipt_page", "flask/templating.py", "render_template"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="of each endpoint")
    args = parser.parse_args()
    stack = Stack(appeals=20)
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{stack.database}"')
        seeded = subprocess.run(
            [sys.executable, str(BENCH / "portal_seed.py"), "20"],
            env=stack.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            check=True,
        )
        info = json.loads(seeded.stdout.decode().strip().splitlines()[-1])
        for name in [k for k in os.environ if k.startswith("TATTLETALE_")]:
            del os.environ[name]
        os.environ.update(stack.env)
        figures = measure(info, max(BATCH, args.requests))
    finally:
        stack.close()
    for name, value in figures.items():
        print(f"{name}: {value:.3f}")
    return 0


def measure(info: dict[str, Any], requests: int) -> dict[str, float]:
    import portal_wsgi

    client = portal_wsgi.app.test_client()
    path = f"/appeals/{info['viral']}/tip?via=facebook"
    match = CSRF.search(client.get(path).data)
    assert match is not None, "no CSRF token on the tip form"
    token = match.group(1).decode()
    sent = 0

    def tip() -> None:
        nonlocal sent
        sent += 1
        # Each tip from another address, as the load's are: no rate limit is reached.
        answer = client.post(
            path,
            data={
                "csrf_token": token,
                "body": f"I saw him outside the bakery on Main Street, tip {sent}. "
                "He had a red jacket and drove a grey hatchback.",
                "seen_when": "last Friday around 6 pm",
                "via": "facebook",
                "website": "",
            },
            headers={"X-Forwarded-For": f"10.{sent >> 16 & 255}.{sent >> 8 & 255}.{sent & 255}"},
        )
        assert answer.status_code == 200, answer.status_code

    def bare() -> None:
        answer = client.post("/bench/bare-insert")
        assert answer.status_code == 200, answer.status_code

    for _ in range(50):  # warm: templates compiled, connections open
        tip()
        bare()
    cpu: dict[str, list[float]] = {"tip": [], "bare": []}
    for batch in range(requests // BATCH):
        for name, fn in [("tip", tip), ("bare", bare)][:: 1 if batch % 2 == 0 else -1]:
            started = time.process_time()
            for _ in range(BATCH):
                fn()
            cpu[name].append((time.process_time() - started) / BATCH * 1000)
    tip_ms, bare_ms = statistics.median(cpu["tip"]), statistics.median(cpu["bare"])
    figures = {
        "tip_cpu_ms": tip_ms,
        "bare_insert_cpu_ms": bare_ms,
        "bare_over_tip_cpu": bare_ms / tip_ms,
    }

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(BATCH * 3):
        tip()
    profile.disable()
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]

    def cumulative(suffix: str, function: str) -> float:
        return sum(
            entry[3]
            for (file, _line, name), entry in stats.items()
            if name == function and file.endswith(suffix)
        )

    whole = cumulative("portal/public/views.py", "appeal_tip")
    for name, suffix, function in PARTS:
        figures[f"tip_share_{name}"] = cumulative(suffix, function) / whole
    return figures


if __name__ == "__main__":
    sys.exit(main())
