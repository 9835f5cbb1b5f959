"""A Tattletale server for the upload benchmarks, in its own process.

    python bench/upload_server.py INSTANCE_DIR

Serves the real app (tus endpoint included) plus bench-only routes that are not part
of the product: bare endpoints that copy ``request.stream`` to a file, one of them
hashing it on the way (the baselines), this process's peak RSS and bytes written,
and a way to run the ingest job of a clip here, so its disk writes are counted in
this process.
Prints one JSON line (port, token) when ready.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flask import jsonify, request  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from config import load_settings  # noqa: E402
from portal import create_app  # noqa: E402
from portal.extensions import csrf, db  # noqa: E402
from portal.jobs.execution import execute_job  # noqa: E402
from portal.models import Agency, Clip, Role, User, UserRole  # noqa: E402
from portal.services.users import create_api_token  # noqa: E402

COPY_CHUNK = 4 * 1024 * 1024


def proc_status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def proc_write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise KeyError("write_bytes")


def main() -> None:
    instance = Path(sys.argv[1]).resolve()
    instance.mkdir(parents=True, exist_ok=True)
    settings = replace(
        load_settings({"TATTLETALE_ENV": "testing", "TATTLETALE_LOG_LEVEL": "WARNING"}),
        instance_path=instance,
        database_url=f"sqlite:///{instance / 'bench.db'}",
        storage_url=f"file://{instance / 'media'}",
        max_upload_bytes=16 * 1024**3,
    )
    app = create_app(settings)

    @app.route("/bench/bare", methods=["POST"])
    def bare():  # type: ignore[no-untyped-def]
        # The baseline: a bare endpoint copying the body to a file, nothing else.
        request.max_content_length = 1 << 62  # no limit for the baseline (None means the default)
        # A new file each time, like each tus upload (the bench removes both after
        # each run, so neither path gets to skip writing back to disk).
        with open(instance / f"bare-{os.urandom(8).hex()}.bin", "wb") as sink:
            while block := request.stream.read(COPY_CHUNK):
                sink.write(block)
        return "", 204

    @app.route("/bench/bare-hashed", methods=["POST"])
    def bare_hashed():  # type: ignore[no-untyped-def]
        # The fair baseline for an endpoint that must hash what it stores: the same
        # copy, with SHA-256 (hashlib) updated in the same loop.
        request.max_content_length = 1 << 62
        digest = hashlib.sha256()
        with open(instance / f"bare-{os.urandom(8).hex()}.bin", "wb") as sink:
            while block := request.stream.read(COPY_CHUNK):
                digest.update(block)
                sink.write(block)
        return digest.hexdigest(), 200

    @app.route("/bench/stats")
    def stats():  # type: ignore[no-untyped-def]
        return jsonify(peak_rss=proc_status("VmHWM"), write_bytes=proc_write_bytes())

    @app.route("/bench/ingest/<clip_id>", methods=["POST"])
    def ingest(clip_id: str):  # type: ignore[no-untyped-def]
        clip = db.session.scalar(db.select(Clip).where(Clip.public_id == clip_id))
        outcome = execute_job(clip.ingest_job.id, "bench")
        db.session.refresh(clip)
        return jsonify(outcome=outcome, status=clip.status, sha256=clip.original_sha256)

    # Bench-only routes take no cookies: no CSRF to forge.
    csrf.exempt(bare)
    csrf.exempt(bare_hashed)
    csrf.exempt(ingest)

    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        agency = Agency(name="Bench", slug="bench")
        db.session.add(agency)
        # No password: hashing one (Argon2, 64 MiB) would put the KDF's memory into
        # this process's peak RSS, which the benchmark measures for uploads.
        user = User(
            agency=agency,
            email="bench@bench.example",
            password_hash="!",  # noqa: S106  (an unusable hash: no sign-in)
            role_rows=[UserRole(role=Role.OFFICER.value)],
        )
        db.session.add(user)
        _, token = create_api_token(user)
        db.session.commit()

    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(json.dumps({"port": server.server_port, "token": token, "pid": os.getpid()}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
