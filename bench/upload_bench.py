"""Upload benchmarks: the tus endpoint against bare stream copies, memory, disk writes.

    python bench/upload_bench.py [--quick] [--runs N]

Prints ``name: figure`` lines, then each target and whether it is met. The server
runs in its own process (bench/upload_server.py); the client streams a file from
disk over loopback with http.client in 4 MiB blocks, the same way for every endpoint.
Exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from targets import report

REPO = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
BLOCK = 4 * MIB

TARGETS = {
    "upload_peak_rss_mb": ("<", 150.0),
    "upload_peak_rss_growth": ("<=", 1.1),
    # The tus endpoint hashes what it stores, so its fair baseline is a bare copy that
    # hashes too. upload_vs_bare_stream (against a copy that does not hash) is printed
    # for information: it shows what hashing costs on this machine.
    "upload_vs_bare_hashed_stream": (">=", 0.9),
    "upload_disk_write_ratio": ("<=", 1.1),
}


class Server:
    def __init__(self, workdir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(REPO / "bench" / "upload_server.py"), str(workdir)],
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        assert self.process.stdout is not None
        info = json.loads(self.process.stdout.readline())
        self.port = info["port"]
        self.auth = {"Authorization": f"Bearer {info['token']}"}

    def request(self, method: str, path: str, body=None, headers=None):  # type: ignore[no-untyped-def]
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600, blocksize=BLOCK)
        conn.request(method, path, body=body, headers={**self.auth, **(headers or {})})
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response, data

    def stats(self) -> dict[str, int]:
        return json.loads(self.request("GET", "/bench/stats")[1])

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def make_file(path: Path, size: int) -> None:
    block = os.urandom(BLOCK)
    with open(path, "wb") as sink:
        written = 0
        while written < size:
            piece = block[: min(BLOCK, size - written)]
            sink.write(piece)
            written += len(piece)


def tus_upload(server: Server, path: Path) -> str:
    size = path.stat().st_size
    tus = {"Tus-Resumable": "1.0.0"}
    response, body = server.request(
        "POST", "/api/v1/uploads", headers={**tus, "Upload-Length": str(size)}
    )
    assert response.status == 201, body
    location = response.getheader("Location")
    with open(path, "rb") as source:
        response, body = server.request(
            "PATCH",
            location,
            body=source,
            headers={
                **tus,
                "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream",
                "Content-Length": str(size),
            },
        )
    assert response.status == 204, body
    return location.rsplit("/", 1)[1]


def bare_upload(server: Server, path: Path) -> None:
    with open(path, "rb") as source:
        response, body = server.request(
            "POST",
            "/bench/bare",
            body=source,
            headers={"Content-Length": str(path.stat().st_size)},
        )
    assert response.status == 204, body


def bare_hashed_upload(server: Server, path: Path) -> None:
    with open(path, "rb") as source:
        response, body = server.request(
            "POST",
            "/bench/bare-hashed",
            body=source,
            headers={"Content-Length": str(path.stat().st_size)},
        )
    assert response.status == 200 and len(body) == 64, body


def remove_received(instance: Path) -> None:
    """Delete what the server received, so every run starts from the same disk state."""
    for path in [*instance.glob("bare-*.bin"), *instance.glob("media/.uploads/*.part")]:
        path.unlink()
    os.sync()


def timed(function, *args) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def peak_rss_mb(workdir: Path, path: Path) -> float:
    """A fresh server receives one upload; its peak RSS is read from /proc."""
    server = Server(workdir)
    try:
        tus_upload(server, path)
        return server.stats()["peak_rss"] / MIB
    finally:
        server.close()


def disk_write_ratio(workdir: Path, path: Path) -> float:
    """Bytes the server wrote to disk, from the first byte received until the original
    is in storage (upload, attach, ingest), per byte uploaded."""
    server = Server(workdir)
    try:
        # A case to attach to, through the API.
        response, body = server.request(
            "POST",
            "/api/v1/cases",
            body=json.dumps({"number": "B-1", "title": "bench"}),
            headers={"Content-Type": "application/json"},
        )
        case_id = json.loads(body)["id"]
        before = server.stats()["write_bytes"]
        upload_id = tus_upload(server, path)
        response, body = server.request(
            "POST",
            f"/api/v1/cases/{case_id}/clips",
            body=json.dumps({"upload_id": upload_id}),
            headers={"Content-Type": "application/json"},
        )
        assert response.status == 201, body
        clip_id = json.loads(body)["clip"]["id"]
        response, body = server.request("POST", f"/bench/ingest/{clip_id}")
        assert response.status == 200, body
        after = server.stats()["write_bytes"]
        return (after - before) / path.stat().st_size
    finally:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small files, for a smoke run")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = max(3, args.runs)
    small_size = (32 if args.quick else 256) * MIB
    large_size = (256 if args.quick else 2048) * MIB
    speed_size = (128 if args.quick else 1024) * MIB

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(
        prefix="upload-bench-", dir=REPO / "instance" if (REPO / "instance").exists() else None
    ) as tmp:
        work = Path(tmp)
        small, large, speed = work / "small.bin", work / "large.bin", work / "speed.bin"
        make_file(small, small_size)
        make_file(large, large_size)
        make_file(speed, speed_size)

        # A valid video is not needed for the ingest's disk writes: a rejected file is
        # stored all the same (as evidence) and probing writes nothing.
        results["upload_disk_write_ratio"] = disk_write_ratio(work / "disk", small)

        rss_small = peak_rss_mb(work / "rss-small", small)
        rss_large = peak_rss_mb(work / "rss-large", large)
        results["upload_peak_rss_mb"] = rss_large
        results["upload_peak_rss_small_mb"] = rss_small
        results["upload_peak_rss_growth"] = rss_large / rss_small

        server = Server(work / "speed")
        variants = {"tus": tus_upload, "bare": bare_upload, "bare_hashed": bare_hashed_upload}
        times: dict[str, list[float]] = {name: [] for name in variants}
        order = list(variants)
        try:
            for run in range(runs):
                # Interleaved, the order rotated each run, so drift and the disk's
                # write-back hit every variant alike.
                for name in order[run % 3 :] + order[: run % 3]:
                    times[name].append(timed(variants[name], server, speed))
                    remove_received(work / "speed")
        finally:
            server.close()
        rate = {name: speed_size / statistics.median(t) / MIB for name, t in times.items()}
        results["upload_tus_mb_per_s"] = rate["tus"]
        results["upload_bare_mb_per_s"] = rate["bare"]
        results["upload_bare_hashed_mb_per_s"] = rate["bare_hashed"]
        results["upload_vs_bare_stream"] = rate["tus"] / rate["bare"]
        results["upload_vs_bare_hashed_stream"] = rate["tus"] / rate["bare_hashed"]

    return report(TARGETS, results)


if __name__ == "__main__":
    sys.exit(main())
