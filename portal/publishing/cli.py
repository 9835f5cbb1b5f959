"""``flask --app wsgi posts ...``: publishing's operator commands."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from portal.cli_errors import fail

posts = click.Group("posts", help="Posts of appeals to the agencies' channels.")


def _instant(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"not an ISO-8601 time: {value!r}")
    if moment.tzinfo is None:
        fail("give the time with its offset (2027-03-16T14:00:00+00:00, or ...Z)")
    return moment.astimezone(UTC)


@posts.command("publish-due")
@click.option("--at", "at", help="The instant to publish for (ISO-8601 with offset); default now.")
def publish_due_command(at: str | None) -> None:
    """Publish what is due at that instant: start due posts, queue their deliveries
    and due retries for the workers. Safe to run while the scheduler runs."""
    from portal.publishing.services.deliveries import publish_due

    report = publish_due(_instant(at))
    click.echo(
        f"posts started: {report.posts_started}, deliveries queued: "
        f"{report.deliveries_enqueued}, posts done: {report.posts_done}"
    )
