"""The footage journey on the README's scale-out, through HTTP only: an officer opens
a case with an API token and uploads a clip whose PATCHes alternate between the two
web machines, the workers ingest and render it, a supervisor approves the version and
publishes the appeal from the staff pages, and a citizen sends a tip. Then the appeal
goes out at its slot to the portal's pages and a Mastodon account once each, though
Celery beat is killed before the slot and only comes back around it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.portal.publishing.fakes.mastodon import CLIENT_ID, CLIENT_SECRET, FakeMastodon
from tests.scaleout.client import Api, Staff, make_clip, send_tip, sha256
from tests.scaleout.topology import REPO, Topology, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scaleout-journey")]


@dataclass(frozen=True)
class Journey:
    data: bytes
    clip: dict[str, Any]
    appeal: str  # the public path, /appeals/<id>


@pytest.fixture(scope="module")
def journey(topology: Topology, clips: Path) -> Journey:
    """A clip uploaded across both web machines, rendered, approved and published."""
    clip_file = make_clip(clips / "doorbell.mp4", seconds=3)
    officer = Api(topology, "officer")
    case_id = officer.create_case("2026-0001", node=1)
    data = clip_file.read_bytes()
    upload_id = officer.upload(case_id, data, nodes=[0, 1], chunk=-(-len(data) // 4))
    clip_id = officer.attach(case_id, upload_id, node=1)
    body = officer.wait_ready(clip_id)
    Api(topology, "supervisor").approve(body["versions"][0]["id"])
    appeal = Staff(topology, "supervisor", node=1).publish_appeal(case_id)
    return Journey(data, body, appeal)


def test_footage_to_tip_across_two_web_machines_and_two_workers(
    topology: Topology, journey: Journey
) -> None:
    body = journey.clip
    assert body["clip"]["sha256"] == sha256(journey.data)
    assert body["clip"]["size"] == len(journey.data)
    assert [job["status"] for job in body["jobs"]] == ["succeeded"] * 3
    version = body["versions"][0]
    video = next(r for r in version["renditions"] if r["role"] == "video")
    # The stored rendition, served by the other machine, is the one recorded.
    served = Api(topology, "officer").session.get(topology.url(1, video["url"]), timeout=60)
    assert served.status_code == 200 and sha256(served.content) == video["sha256"]

    public = send_tip(topology, journey.appeal, "The robber is my neighbour's cousin.", node=0)
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


#: How late a delivery may be sent after its slot. The scheduler's tick is a minute
#: (``publishing.publish_due``, every 60 s, aligned to the minute): a restarted beat
#: that missed the slot's tick would send it on the next one, 60 s late or more. The
#: rest is beat coming back (an app import), its control pass (every 15 s), a worker
#: taking the job, and Mastodon's upload, processing polls (2 s each) and status; on
#: a loaded machine that can take most of the minute, so the bound is just under it.
ON_TIME_S = 55.0

# The admin connects the channel with the staff pages' own services (OAuth with PKCE:
# connections.start_oauth, then finish_oauth with the code the network's consent page
# gave), in an app context on an admin machine, as with `flask shell`. The staff form
# itself takes only https:// addresses in production, and the fake is plain HTTP on
# loopback (which the adapters accept: channels/http.py require_https).
CONNECT = """
import json, sys
from sqlalchemy import select
from wsgi import app
from portal.extensions import db
from portal.models import User
from portal.publishing import connections
given = json.loads(sys.argv[1])
with app.app_context():
    admin = db.session.scalar(select(User).where(User.email == given["admin"]))
    start = connections.start_oauth(
        admin, network="mastodon", name=given["name"], client_id=given["client_id"],
        client_secret=given["client_secret"], base_url=given["base_url"], account_id="",
        redirect_uri=given["redirect_uri"],
    )
    db.session.commit()
    print(json.dumps({"authorize_url": start.authorize_url}), flush=True)
    row = connections.finish_oauth(
        admin, channel_id=start.channel_id, session_state=start.state, state=start.state,
        code=sys.stdin.readline().strip(), redirect_uri=given["redirect_uri"],
    )
    db.session.commit()
    print(json.dumps({"channel": row.public_id, "account": row.settings["account_name"]}))
"""


def connect_mastodon(topology: Topology, mastodon: FakeMastodon) -> str:
    """The channel's public id, connected by the admin to the fake's account."""
    given = {
        "admin": topology.accounts["admin"].email,
        "name": "Springfield PD on Mastodon",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "base_url": mastodon.url,
        "redirect_uri": topology.url(0, "/staff/admin/channels/callback"),
    }
    log_path = topology.logs / "connect-mastodon.log"
    with log_path.open("w") as log:
        script = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-c", CONNECT, json.dumps(given)],
            env=topology.env("admin"),
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,  # the app's log lines
            text=True,
        )
    assert script.stdin is not None and script.stdout is not None
    try:
        line = script.stdout.readline()
        assert line.startswith("{"), line + log_path.read_text()
        query = parse_qs(urlsplit(json.loads(line)["authorize_url"]).query)
        # The admin's browser at the instance's consent page: approved.
        script.stdin.write(mastodon.authorize(query) + "\n")
        script.stdin.close()
        output = script.stdout.read()
        script.wait(120)
    finally:
        if script.poll() is None:
            script.kill()
    assert script.returncode == 0, log_path.read_text()
    connected = json.loads(output.strip().splitlines()[-1])
    assert connected["account"] == f"@tattletale@{urlsplit(mastodon.url).netloc}"
    return str(connected["channel"])


def test_post_goes_out_once_per_channel_though_beat_is_killed_before_its_slot(
    topology: Topology, journey: Journey
) -> None:
    beat = topology["beat"]
    supervisor = Api(topology, "supervisor")
    with FakeMastodon().running() as mastodon:
        channel = connect_mastodon(topology, mastodon)
        # A slot on the minute, as the weekly slot is, 25 to 85 s ahead.
        slot = (datetime.now(UTC) + timedelta(seconds=25)).replace(
            second=0, microsecond=0
        ) + timedelta(minutes=1)
        created = supervisor.post(
            "posts",
            json={
                "appeals": [journey.appeal.rsplit("/", 1)[-1]],
                "slot_at": slot.isoformat(),
                "channels": [channel],
            },
        )
        assert created.status_code == 201, created.text
        post = created.json()
        assert post["status"] == "scheduled"
        assert sorted(d["network"] for d in post["deliveries"]) == ["mastodon", "portal"]

        def until(moment: datetime) -> None:
            time.sleep(max(0.0, (moment - datetime.now(UTC)).total_seconds()))

        # Beat dies (as a crashed machine: no shutdown) before the slot's tick...
        until(slot - timedelta(seconds=12))
        killed_pid = beat.pid
        beat.kill()
        assert beat.process is not None and beat.process.returncode == -signal.SIGKILL
        # ...and comes back around the slot (it takes some seconds to start).
        until(slot - timedelta(seconds=3))
        restarted_at = datetime.now(UTC)
        beat.restarts += 1
        beat.start(wait=False)
        assert beat.pid != killed_pid

        def done() -> dict[str, Any] | None:
            shown = supervisor.get(f"posts/{post['id']}").json()
            assert shown["status"] not in ("cancelled",), shown
            assert all(d["status"] != "failed" for d in shown["deliveries"]), shown
            return dict(shown) if shown["status"] == "done" else None

        shown = wait_for(done, timeout_s=90, what="the post sent", interval_s=1)

    # Once on the network: one video, one status, sent once (a repeat with the same
    # Idempotency-Key would be answered with the same status, so the requests count).
    assert len(mastodon.statuses) == 1 and len(mastodon.calls("post")) == 1
    assert len(mastodon.calls("upload")) == 1
    [status] = mastodon.statuses.values()
    assert status["media_ids"] == [next(iter(mastodon.media))]

    by_network = {d["network"]: d for d in shown["deliveries"]}
    assert {n: d["status"] for n, d in by_network.items()} == {
        "mastodon": "sent",
        "portal": "sent",
    }
    assert by_network["mastodon"]["url"] == f"{mastodon.url}/@tattletale/{status['id']}"
    lateness = {
        n: (datetime.fromisoformat(d["sent_at"]) - slot).total_seconds()
        for n, d in by_network.items()
    }
    assert all(0 <= late <= ON_TIME_S for late in lateness.values()), lateness

    # One delivery row per channel, sent at its first attempt by one job on a worker;
    # the slot's tick had one row, made by the restarted beat.
    rows = topology.sql(
        "SELECT c.network, d.status, d.attempts, j.status, j.attempts, j.worker"
        " FROM deliveries d JOIN posts p ON p.id = d.post_id"
        " JOIN channels c ON c.id = d.channel_id"
        " JOIN jobs j ON j.name = 'publishing.deliver' AND (j.args->>'delivery_id')::int = d.id"
        " WHERE p.public_id = %s ORDER BY c.network",
        post["id"],
    )
    assert [row[:5] for row in rows] == [
        ("mastodon", "sent", 1, "succeeded", 1),
        ("portal", "sent", 1, "succeeded", 1),
    ], rows
    assert all(str(row[5]).startswith("celery:") for row in rows), rows
    ticks = topology.sql(
        "SELECT status, created_at FROM jobs WHERE unique_key = %s",
        f"periodic:publishing.publish_due:{slot.strftime('%Y-%m-%dT%H:%M:%SZ')}",
    )
    assert len(ticks) == 1 and ticks[0][0] == "succeeded", ticks
    assert ticks[0][1] >= restarted_at, (ticks, restarted_at)
    print(f"beat restarted {beat.restarts} time(s); sent after the slot (s): {lateness}")
