"""Faults of the machines that render, on the README's scale-out with its default job
settings: a worker killed mid-render, an ffmpeg stopped with SIGSTOP, and a healthy
render much longer than ``TATTLETALE_JOB_STALE_AFTER`` (60 s), which must be left
alone. Each ends with the version ready, rendered and recorded once, no ffmpeg left
running and no work file left behind.

The long render starts first and runs on one worker while the other two faults
happen one after the other on the other worker: the module takes as long as the
long render, not as the three together.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.scaleout.client import Api, make_clip
from tests.scaleout.topology import Topology, process_tree, processes_named, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("scaleout-workers")]


@dataclass
class Render:
    clip_id: str
    version_id: str = ""


def render_job(topology: Topology, clip_id: str) -> tuple[int, str, int, str, str] | None:
    """(job id, status, attempts, worker, version public id) of the clip's first render."""
    rows = topology.sql(
        "SELECT j.id, j.status, j.attempts, j.worker, v.public_id FROM jobs j"
        " JOIN clip_versions v ON j.subject_type = 'clip_version' AND j.subject_id = v.id"
        " JOIN clips c ON v.clip_id = c.id WHERE c.public_id = %s AND j.name = 'clips.render'",
        clip_id,
    )
    return rows[0] if rows else None


def running_ffmpeg_of(topology: Topology, worker: str) -> int | None:
    """The ffmpeg a worker's pool process runs for a render, once it has started."""
    tree = set(process_tree(topology[worker].pid))
    for pid in processes_named("ffmpeg"):
        try:
            parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent in tree and "-filter_complex" in Path(f"/proc/{pid}/cmdline").read_text():
            return pid
    return None


def render_events(topology: Topology, version_id: str) -> int:
    rows = topology.sql(
        "SELECT count(*) FROM audit_events WHERE action = 'evidence.render' AND object_id = %s",
        version_id,
    )
    return int(rows[0][0])


def renditions(topology: Topology, version_id: str) -> list[tuple[str, str]]:
    return topology.sql(
        "SELECT r.name, r.storage_key FROM renditions r JOIN clip_versions v ON r.version_id = v.id"
        " WHERE v.public_id = %s ORDER BY r.name",
        version_id,
    )


def stored_keys_of(topology: Topology, version_id: str) -> list[str]:
    """Every object stored under the version's folder, whichever run wrote it."""
    keys = [key for _, key in renditions(topology, version_id)]
    folder = keys[0].rsplit("/", 2)[0]
    listed = topology.s3_client().list_objects_v2(Bucket=topology.bucket, Prefix=folder + "/")
    return sorted(item["Key"] for item in listed.get("Contents", []))


def wait_rendering(topology: Topology, clip_id: str) -> tuple[str, int]:
    """Wait until the clip's render runs ffmpeg on some worker: (worker, ffmpeg pid)."""

    def started() -> tuple[str, int] | None:
        job = render_job(topology, clip_id)
        if job is None or job[1] != "running":
            return None
        for name in ("worker1", "worker2"):
            if topology[name].running and job[3].endswith(f":{pid_of_pool(topology, name)}"):
                ffmpeg = running_ffmpeg_of(topology, name)
                if ffmpeg is not None:
                    return name, ffmpeg
        return None

    return tuple(wait_for(started, timeout_s=300, what="the render running ffmpeg", interval_s=0.5))  # type: ignore[return-value]


def pid_of_pool(topology: Topology, worker: str) -> int:
    """The pool process of a worker (the one that runs the jobs and names the claim)."""
    tree = process_tree(topology[worker].pid)
    pools = [pid for pid in tree[1:] if "celery" in Path(f"/proc/{pid}/cmdline").read_text()]
    return pools[0] if pools else -1


def assert_rendered_once(
    topology: Topology, api: Api, clip_id: str
) -> tuple[int, str, int, str, str]:
    body = api.wait_ready(clip_id, timeout_s=900)
    job = render_job(topology, clip_id)
    assert job is not None and job[1] == "succeeded"
    version_id = body["versions"][0]["id"]
    assert render_events(topology, version_id) == 1
    recorded = renditions(topology, version_id)
    assert recorded and {name for name, _ in recorded} == {
        r["name"] for r in body["versions"][0]["renditions"]
    }
    # Only one run's outputs are the version's: every recorded key is in one run's folder.
    assert len({key.rsplit("/", 1)[0] for _, key in recorded}) == 1
    return job


@pytest.fixture(scope="module")
def api(topology: Topology) -> Api:
    return Api(topology, "officer")


@pytest.fixture(scope="module")
def long_render(topology: Topology, api: Api, clips: Path) -> Iterator[Render]:
    """A clip whose render takes longer than the stale setting (fine detail in every
    frame of 100 s, encoded at the default settings; 60 s of it rendered in 50 s on
    the CI machine, so 60 s was too short to be sure), started before the other
    faults."""
    clip = make_clip(clips / "long.mp4", seconds=100, size="640x360", source="mandelbrot")
    case_id = api.create_case("2026-LONG")
    yield Render(api.add_clip(case_id, clip))


def test_worker_killed_mid_render_renders_once_elsewhere(
    topology: Topology, api: Api, clips: Path, long_render: Render
) -> None:
    case_id = api.create_case("2026-KILL")
    clip_id = api.add_clip(case_id, make_clip(clips / "kill.mp4", seconds=20, size="640x360"))
    worker, ffmpeg = wait_rendering(topology, clip_id)
    first = render_job(topology, clip_id)
    assert first is not None

    topology[worker].kill()
    # The machine's supervisor (systemd) starts the worker again.
    topology[worker].start()

    job = assert_rendered_once(topology, api, clip_id)
    assert job[2] == 2  # the killed attempt and the one that finished
    assert job[3] != first[3]
    # The killed worker's ffmpeg died with it, and its work files are gone (once the
    # long render, which may still be running on the other worker, is done too).
    assert not os.path.exists(f"/proc/{ffmpeg}") or _zombie(ffmpeg)
    api.wait_ready(long_render.clip_id, timeout_s=900)
    assert topology.work_leftovers() == []


def test_stopped_ffmpeg_is_killed_and_the_render_retried(
    topology: Topology, api: Api, clips: Path, long_render: Render
) -> None:
    case_id = api.create_case("2026-STOP")
    clip_id = api.add_clip(case_id, make_clip(clips / "stop.mp4", seconds=20, size="640x360"))
    _, ffmpeg = wait_rendering(topology, clip_id)
    os.kill(ffmpeg, signal.SIGSTOP)

    job = assert_rendered_once(topology, api, clip_id)
    assert job[2] == 2
    assert not os.path.exists(f"/proc/{ffmpeg}") or _zombie(ffmpeg)
    api.wait_ready(long_render.clip_id, timeout_s=900)  # its work files are its own
    assert topology.work_leftovers() == []


def test_render_longer_than_the_stale_setting_runs_once(
    topology: Topology, api: Api, long_render: Render
) -> None:
    job = assert_rendered_once(topology, api, long_render.clip_id)
    assert job[2] == 1
    runtime = topology.sql(
        "SELECT extract(epoch FROM finished_at - started_at) FROM jobs WHERE id = %s", job[0]
    )[0][0]
    assert topology.work_leftovers() == []
    assert topology.ffmpeg_of_topology() == []
    # What the test is about: the render outlived the stale limit (60 s). A machine
    # fast enough to render the clip sooner cannot show it: said, not passed.
    if runtime <= 60:
        pytest.skip(f"the render took {runtime:.0f} s, not longer than the stale setting")


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] == "Z"
