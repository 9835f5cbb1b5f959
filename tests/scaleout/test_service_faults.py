"""Outages of the shared services under the README's scale-out: PostgreSQL restarted
during a burst of tips and API writes, Redis restarted with its data gone while jobs
wait, and S3 unreachable for longer than a minute while an ingest and a render store.
Nothing accepted may be lost and nothing done twice; no process is restarted to
recover."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.scaleout.client import Api, browser, csrf_of, make_clip
from tests.scaleout.test_worker_faults import render_events, render_job, wait_rendering
from tests.scaleout.topology import Topology, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scaleout-services")]

RECEIPT_NUMBER = re.compile(r'class="receipt-number">([^<]+)<')


@pytest.fixture(scope="module")
def topology_env() -> dict[str, str]:
    # The burst comes from one address; the per-client tip limits (10 a minute, and
    # 3 a minute for a form sent without JavaScript, so without a proof of work) are
    # not what this module is about.
    return {
        "TATTLETALE_RATELIMIT_TIPS": "100000 per minute",
        "TATTLETALE_RATELIMIT_UNPROVEN": "100000 per minute",
    }


@pytest.fixture(scope="module")
def api(topology: Topology) -> Api:
    return Api(topology, "officer")


def _tip(topology: Topology, node: int, body: str) -> str | None:
    """One citizen's tip through the agency's form; the receipt number if accepted."""
    session = browser()
    try:
        form = session.get(topology.url(node, "/agencies/springfield/tip"), timeout=30)
        if form.status_code != 200:
            return None
        answer = session.post(
            topology.url(node, "/agencies/springfield/tip"),
            data={"csrf_token": csrf_of(form.text), "body": body, "website": ""},
            timeout=30,
        )
    except requests.RequestException:
        return None
    match = RECEIPT_NUMBER.search(answer.text)
    if answer.status_code == 200 and match:
        return match.group(1).strip()
    return None


def _case(api: Api, node: int, number: str) -> str | None:
    try:
        answer = api.post("cases", node, json={"number": number, "title": "Burst"})
    except requests.RequestException:
        return None
    return str(answer.json()["id"]) if answer.status_code == 201 else None


def test_postgres_restart_during_a_burst_loses_no_accepted_write(
    topology: Topology, api: Api
) -> None:
    stop = threading.Event()
    tips: list[str | None] = []
    cases: list[str | None] = []

    def tipster(index: int) -> None:
        n = 0
        while not stop.is_set():
            tips.append(_tip(topology, (index + n) % 2, f"Burst tip {index}-{n}: a red car."))
            n += 1

    def writer(index: int) -> None:
        n = 0
        while not stop.is_set():
            cases.append(_case(api, (index + n) % 2, f"BURST-{index}-{n}"))
            n += 1

    with ThreadPoolExecutor(6) as pool:
        for index in range(3):
            pool.submit(tipster, index)
            pool.submit(writer, index)
        time.sleep(4)
        topology["postgres"].restart()
        time.sleep(6)
        stop.set()

    accepted_tips = [t for t in tips if t]
    accepted_cases = [c for c in cases if c]
    assert accepted_tips and accepted_cases
    stored_tips = {n for (n,) in topology.sql("SELECT number FROM tips WHERE body LIKE 'Burst%'")}
    stored_cases = {
        p for (p,) in topology.sql("SELECT public_id FROM cases WHERE number LIKE 'BURST-%'")
    }
    # Every accepted write is there, once; a write that was refused may be absent.
    assert set(accepted_tips) <= stored_tips and len(accepted_tips) == len(set(accepted_tips))
    assert set(accepted_cases) <= stored_cases
    assert len(stored_tips) <= len(tips) and len(stored_cases) <= len(cases)
    # Both machines answer again without having been restarted.
    for node in (0, 1):
        assert _tip(topology, node, "After the restart: the car was blue.")
        assert _case(api, node, f"AFTER-{node}")
    assert topology["web1"].restarts == topology["web2"].restarts == 0


def test_redis_restarted_empty_while_jobs_wait_still_runs_them(
    topology: Topology, api: Api, clips: Path
) -> None:
    clip = make_clip(clips / "redis.mp4", seconds=3)
    case_id = api.create_case("2026-REDIS")
    for name in ("worker1", "worker2"):
        topology[name].stop()
    clip_ids = [api.add_clip(case_id, clip) for _ in range(2)]
    queued = topology.sql("SELECT count(*) FROM jobs WHERE status = 'queued'")[0][0]
    assert queued >= 2
    # The broker's machine is lost with every message it held.
    topology["redis"].kill()
    topology["redis"].start()
    for name in ("worker1", "worker2"):
        topology[name].start()

    for clip_id in clip_ids:
        body = api.wait_ready(clip_id, timeout_s=600)
        assert [job["attempts"] for job in body["jobs"]] == [1, 1, 1]
        assert render_events(topology, body["versions"][0]["id"]) == 1


def test_s3_unreachable_for_seventy_seconds_during_an_ingest_and_a_store(
    topology: Topology, api: Api, clips: Path
) -> None:
    assert topology.proxy is not None
    case_id = api.create_case("2026-S3")
    rendering = api.add_clip(
        case_id, make_clip(clips / "s3-render.mp4", seconds=20, size="640x360")
    )
    small = clips / "s3-ingest.mp4"
    make_clip(small, seconds=3)
    data = small.read_bytes()
    upload_id = api.upload(case_id, data, nodes=[0, 1], chunk=-(-len(data) // 2))
    wait_rendering(topology, rendering)

    topology.proxy.cut()
    try:
        # The ingest starts during the outage, and the render stores its outputs in it.
        ingesting = api.attach(case_id, upload_id, node=1)
        wait_for(
            lambda: topology.sql(
                "SELECT count(*) FROM jobs WHERE name = 'clips.ingest' AND transient_failures > 0"
            )[0][0],
            timeout_s=120,
            what="an ingest retried during the outage",
        )
        time.sleep(70)
    finally:
        topology.proxy.restore()

    for clip_id in (ingesting, rendering):
        body = api.wait_ready(clip_id, timeout_s=900)
        assert render_events(topology, body["versions"][0]["id"]) == 1
    job = render_job(topology, rendering)
    assert job is not None and job[1] == "succeeded"
    assert topology.incomplete_multipart() == []
    assert topology.work_leftovers() == []
