"""Liveness, readiness and metrics, as a load balancer and Prometheus see them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from flask import Flask

from portal import create_app
from portal.extensions import db
from portal.models import Job, JobStatus
from portal.models.base import utcnow
from portal.ops import health
from tests.conftest import IsolatedClient

METRICS_TOKEN = "scrape-token-for-tests-0123456789"


@pytest.fixture
def metrics_app(settings):  # type: ignore[no-untyped-def]
    app = create_app(replace(settings, metrics_token=METRICS_TOKEN))
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def test_healthz_answers_ok(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_reports_every_check_ok(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"
    assert {name: check["ok"] for name, check in response.json["checks"].items()} == {
        "database": True,
        "broker": True,
        "storage": True,
    }


def test_readyz_answers_503_when_storage_fails(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    class Unreachable:
        def exists(self, key: str) -> bool:
            raise ConnectionError("connection refused: s3.internal:443")

    monkeypatch.setattr(health, "get_store", lambda: Unreachable())
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json["status"] == "not ready"
    assert response.json["checks"]["storage"]["ok"] is False
    assert response.json["checks"]["database"]["ok"] is True
    # The unauthenticated answer does not tell an outsider where the store lives.
    assert b"s3.internal" not in response.data


def test_readyz_answers_503_when_the_broker_is_unreachable(settings) -> None:  # type: ignore[no-untyped-def]
    # A port nothing listens on: the broker check must fail fast, not hang.
    app = create_app(replace(settings, broker_url="redis://127.0.0.1:1/0"))
    app.test_client_class = IsolatedClient
    with app.app_context():
        response = app.test_client().get("/readyz")
        db.session.remove()
        db.engine.dispose()
    assert response.status_code == 503
    assert response.json["checks"]["broker"]["ok"] is False
    assert response.json["checks"]["broker"]["ms"] < 10_000


def test_metrics_are_off_without_a_token(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong", f"Bearer {METRICS_TOKEN}x", METRICS_TOKEN]
)
def test_metrics_refuse_a_missing_or_wrong_token(metrics_app: Flask, authorization) -> None:  # type: ignore[no-untyped-def]
    headers = {"Authorization": authorization} if authorization else {}
    assert metrics_app.test_client().get("/metrics", headers=headers).status_code == 401


def test_metrics_report_queue_depth_failures_retries_and_durations(metrics_app: Flask) -> None:
    now = utcnow()
    queued = JobStatus.QUEUED.value
    db.session.add_all(
        [
            Job(name="clips.render", status=queued, run_after=now - timedelta(seconds=90)),
            Job(name="clips.render", status=queued, run_after=now - timedelta(seconds=5)),
            # Not due yet: waiting for its retry, not part of the queue depth.
            Job(name="clips.render", status=queued, run_after=now + timedelta(hours=1)),
            Job(
                name="clips.ingest",
                status=JobStatus.FAILED.value,
                attempts=3,
                started_at=now - timedelta(seconds=30),
                finished_at=now - timedelta(seconds=20),
            ),
            Job(
                name="clips.ingest",
                status=JobStatus.SUCCEEDED.value,
                attempts=2,
                started_at=now - timedelta(seconds=400),
                finished_at=now - timedelta(seconds=100),
            ),
        ]
    )
    db.session.commit()
    response = metrics_app.test_client().get(
        "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    lines = set(response.get_data(as_text=True).splitlines())
    assert 'tattletale_jobs{name="clips.render",status="queued"} 3.0' in lines
    assert "tattletale_job_queue_depth 2.0" in lines
    assert 'tattletale_job_failures_total{name="clips.ingest"} 1.0' in lines
    # 2 extra attempts on the failed job, 1 on the succeeded one.
    assert "tattletale_job_retries_total 3.0" in lines
    oldest = next(line for line in lines if line.startswith("tattletale_job_queue_oldest_seconds "))
    assert 85 <= float(oldest.split()[1]) <= 120
    # One ingest of 10 s and one of 300 s finished in the last hour.
    assert 'tattletale_job_duration_seconds_bucket{le="15.0",name="clips.ingest"} 1.0' in lines
    assert 'tattletale_job_duration_seconds_bucket{le="300.0",name="clips.ingest"} 2.0' in lines
    assert 'tattletale_job_duration_seconds_count{name="clips.ingest"} 2.0' in lines
    assert 'tattletale_job_duration_seconds_sum{name="clips.ingest"} 310.0' in lines
