"""The footage journey on the README's scale-out, through HTTP only: an officer opens
a case with an API token and uploads a clip whose PATCHes alternate between the two
web machines, the workers ingest and render it, a supervisor approves the version and
publishes the appeal from the staff pages, and a citizen sends a tip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scaleout.client import Api, Staff, make_clip, send_tip, sha256
from tests.scaleout.topology import Topology

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scaleout-journey")]


def test_footage_to_tip_across_two_web_machines_and_two_workers(
    topology: Topology, clips: Path
) -> None:
    clip_file = make_clip(clips / "doorbell.mp4", seconds=3)
    officer = Api(topology, "officer")
    case_id = officer.create_case("2026-0001", node=1)
    data = clip_file.read_bytes()
    upload_id = officer.upload(case_id, data, nodes=[0, 1], chunk=-(-len(data) // 4))
    clip_id = officer.attach(case_id, upload_id, node=1)

    body = officer.wait_ready(clip_id)
    assert body["clip"]["sha256"] == sha256(data)
    assert body["clip"]["size"] == len(data)
    assert [job["status"] for job in body["jobs"]] == ["succeeded"] * 3
    version = body["versions"][0]
    video = next(r for r in version["renditions"] if r["role"] == "video")
    # The stored rendition, served by the other machine, is the one recorded.
    served = officer.session.get(topology.url(1, video["url"]), timeout=60)
    assert served.status_code == 200 and sha256(served.content) == video["sha256"]

    Api(topology, "supervisor").approve(version["id"])
    appeal = Staff(topology, "supervisor", node=1).publish_appeal(case_id)

    public = send_tip(topology, appeal, "The robber is my neighbour's cousin.", node=0)
    assert public.status_code == 200, public.text[:2000]
    assert "Your receipt" in public.text
    tips = Staff(topology, "supervisor", node=0).session.get(topology.url(0, "/staff/tips"))
    assert "neighbour" in tips.text

    # Each job ran once, on a worker; nothing staged or half-written is left.
    runs = topology.sql("SELECT name, attempts, worker FROM jobs WHERE name LIKE 'clips.%'")
    assert sorted(name for name, _, _ in runs) == ["clips.ingest", "clips.proxy", "clips.render"]
    assert all(attempts == 1 and worker.startswith("celery:") for _, attempts, worker in runs)
    assert topology.work_leftovers() == []
    assert topology.incomplete_multipart() == []
