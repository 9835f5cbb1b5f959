"""Jobs that belong to no feature: a health check that proves a runner works."""

from __future__ import annotations

from portal.jobs.registry import JobContext, job


@job("ping", max_attempts=1)
def ping(ctx: JobContext) -> None:
    """Do nothing but report who ran it. `flask --app wsgi jobs ping` sends one."""
    ctx.report(1.0, f"pong from {ctx.worker}")
