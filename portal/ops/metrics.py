"""Prometheus metrics computed from the database at each scrape.

The job table is the truth in both modes (threads or Celery), so figures read from
it are the same whichever web process is scraped, and survive restarts. Counters
are counts of rows that are never deleted, so they only go up.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Job, JobStatus
from portal.models.base import utcnow

DURATION_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))
DURATION_WINDOW = timedelta(hours=1)


class JobCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        now = utcnow()
        by_status = GaugeMetricFamily(
            "tattletale_jobs", "Job rows by name and status.", labels=["name", "status"]
        )
        failures = CounterMetricFamily(
            "tattletale_job_failures", "Jobs that ended failed.", labels=["name"]
        )
        for name, status, count in db.session.execute(
            select(Job.name, Job.status, func.count()).group_by(Job.name, Job.status)
        ):
            by_status.add_metric([name, status], count)
            if status == JobStatus.FAILED.value:
                failures.add_metric([name], count)
        yield by_status
        yield failures

        due = db.session.execute(
            select(func.count(), func.min(Job.run_after)).where(
                Job.status == JobStatus.QUEUED.value, Job.run_after <= now
            )
        ).one()
        yield GaugeMetricFamily(
            "tattletale_job_queue_depth", "Queued jobs that are due now.", value=due[0]
        )
        oldest = (now - due[1]).total_seconds() if due[1] is not None else 0.0
        yield GaugeMetricFamily(
            "tattletale_job_queue_oldest_seconds",
            "How long the oldest due job has waited.",
            value=max(0.0, oldest),
        )
        retries = db.session.scalar(
            select(func.coalesce(func.sum(Job.attempts - 1), 0)).where(Job.attempts > 1)
        )
        yield CounterMetricFamily(
            "tattletale_job_retries",
            "Attempts beyond the first: retries after errors and recoveries of jobs "
            "whose worker was lost.",
            value=int(retries or 0),
        )
        yield self._durations(now)

    def _durations(self, now: datetime) -> HistogramMetricFamily:
        histogram = HistogramMetricFamily(
            "tattletale_job_duration_seconds",
            "Run time of the last attempt of jobs that finished in the past hour.",
            labels=["name"],
        )
        rows = db.session.execute(
            select(Job.name, Job.started_at, Job.finished_at).where(
                Job.finished_at >= now - DURATION_WINDOW, Job.started_at.is_not(None)
            )
        )
        per_name: dict[str, list[float]] = {}
        for name, started, finished in rows:
            per_name.setdefault(name, []).append(max(0.0, (finished - started).total_seconds()))
        for name, durations in sorted(per_name.items()):
            buckets = [
                (
                    str(bound) if bound != float("inf") else "+Inf",
                    sum(d <= bound for d in durations),
                )
                for bound in DURATION_BUCKETS
            ]
            histogram.add_metric([name], buckets, sum_value=sum(durations))
        return histogram


def _bucket_label(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(bound)


def registry() -> CollectorRegistry:
    """A registry per scrape: the collector reads the app's database in the request's
    app context."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(JobCollector())
    return reg
