"""Publishing's jobs: thin wrappers that take ids and call the services.

* ``publishing.deliver``: one attempt of one delivery (the engine, services/deliveries);
* ``publishing.publish_due``, every minute: starts due posts, enqueues due deliveries
  and retries, marks finished posts done;
* ``publishing.solved`` / ``publishing.remove``: the "SOLVED" update, and a takedown;
* ``publishing.remove_expired``, hourly: the agencies' retention of sent posts;
* ``publishing.alert``: a mail to the agency's coordinators about a delivery;
* ``publishing.schedule_replies``, every minute: queues the fetches of replies due,
  ``publishing.fetch_replies`` files one delivery's new replies as tips, and
  ``publishing.reply_action`` hides, deletes or answers one (services/replies).
"""

from __future__ import annotations

from portal.extensions import db
from portal.jobs.errors import PermanentJobError, TransientJobError
from portal.jobs.periodic import periodic
from portal.jobs.registry import JobContext, job
from portal.models import Job, User
from portal.publishing.models import Delivery, DeliveryStatus
from portal.publishing.services.deliveries import (
    ALERT_JOB,
    DELIVER_JOB,
    REMOVE_JOB,
    SOLVED_JOB,
    SYSTEM,
    fail_after_job_gave_up,
    publish_due,
    run_delivery,
)
from portal.publishing.services.followups import remove_delivery, send_solved_update
from portal.publishing.services.posts import remove_expired_posts
from portal.publishing.services.replies import (
    ACTION_JOB,
    FETCH_JOB,
    action_gave_up,
    fetch_replies,
    run_action,
    schedule_fetches,
)
from portal.services.audit import record_event
from portal.services.mail import Mail, MailDeferred, MailRefused, send_mail


def _delivery_failed(row: Job, reason: str) -> None:
    if row.subject_id is not None:
        fail_after_job_gave_up(row.subject_id, reason)


@job(DELIVER_JOB, subject=("delivery", "delivery_id"), on_failure=_delivery_failed)
def deliver(ctx: JobContext, delivery_id: int, attempt: int) -> None:
    # ``attempt`` only tells the attempts' job rows apart; the row's count decides.
    run_delivery(delivery_id, ctx)


@periodic("publishing.publish_due", every_s=60)
def publish_due_posts() -> None:
    publish_due()


@job(SOLVED_JOB, max_attempts=5, subject=("delivery", "delivery_id"))
def send_solved(ctx: JobContext, delivery_id: int) -> None:
    send_solved_update(delivery_id, ctx)


def _removal_failed(row: Job, reason: str) -> None:
    # Still on the network although its appeal is gone or its time is up: a person
    # must know, on the post page.
    delivery = db.session.get(Delivery, row.subject_id) if row.subject_id else None
    if delivery is None or delivery.status != DeliveryStatus.SENT.value:
        return
    delivery.status = DeliveryStatus.NEEDS_ATTENTION.value
    delivery.reason = f"Could not take it down from {delivery.channel.network}: {reason}"[:4000]
    record_event(
        "delivery.needs_attention",
        agency_id=delivery.post.agency_id,
        actor_label=SYSTEM,
        object_type="delivery",
        object_id=delivery.public_id,
        details={"reason": delivery.reason},
    )
    db.session.flush()


@job(REMOVE_JOB, max_attempts=5, subject=("delivery", "delivery_id"), on_failure=_removal_failed)
def remove(ctx: JobContext, delivery_id: int) -> None:
    remove_delivery(delivery_id)


@periodic("publishing.remove_expired", every_s=3600)
def remove_expired() -> None:
    remove_expired_posts()
    db.session.commit()


@periodic("publishing.schedule_replies", every_s=60)
def schedule_replies() -> None:
    schedule_fetches()


@job(FETCH_JOB, max_attempts=3, subject=("delivery", "delivery_id"))
def fetch(ctx: JobContext, delivery_id: int) -> None:
    fetch_replies(delivery_id, ctx)


def _action_gave_up(row: Job, reason: str) -> None:
    args = row.args or {}
    if row.subject_id is not None:
        action_gave_up(row.subject_id, str(args.get("action", "")), reason)


@job(ACTION_JOB, max_attempts=5, subject=("public_reply", "reply_id"), on_failure=_action_gave_up)
def reply_action(ctx: JobContext, reply_id: int, action: str) -> None:
    run_action(reply_id, action, ctx)


ALERTS = {
    "credential": "{network} refused the credentials of {channel}",
    "rejected": "A post could not go out on {channel}",
    "attention": "A post on {channel} needs a look",
    "remove": "A post on {channel} must be removed by hand",
    "cap": "A post on {channel} waits for {network}'s daily cap",
}


@job(ALERT_JOB, max_attempts=5)
def alert(ctx: JobContext, delivery_id: int, kind: str, user_id: int) -> None:
    """Tell one coordinator what went wrong with a delivery, and where to see it. The
    mail says which channel and why; never a credential."""
    from portal.services.notifications import page_url

    delivery, user = db.session.get(Delivery, delivery_id), db.session.get(User, user_id)
    if delivery is None or user is None or user.is_disabled:
        return
    channel = delivery.channel
    subject = ALERTS.get(kind, ALERTS["attention"]).format(
        network=channel.network, channel=channel.name
    )
    try:
        link = page_url("staff.post_detail", post_id=delivery.post.public_id)
    except Exception:  # werkzeug's BuildError: no post page in this build
        link = ""
    text = (
        f"{subject}.\n\nWhat happened: {delivery.reason or delivery.status}\n\n"
        + (f"See the post here (sign-in required):\n{link}\n\n" if link else "")
        + (
            "An admin must connect the channel again before anything more is sent to it.\n"
            if kind == "credential"
            else ""
        )
    )
    db.session.commit()
    try:
        send_mail(Mail(to=user.email, subject=subject, text=text))
    except MailDeferred as exc:
        raise TransientJobError(str(exc)) from exc
    except MailRefused as exc:
        raise PermanentJobError(str(exc)) from exc
