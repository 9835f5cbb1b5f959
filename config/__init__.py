"""Settings for Tattletale, read from ``TATTLETALE_*`` environment variables.

With no variable set, the embedded mode works: SQLite and media under ``instance/``,
the local job runner, rate limits in memory. Production refuses to start when a
setting that must be chosen by the operator is missing (see :func:`load_settings`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ENVIRONMENTS = ("development", "production", "testing")
SMTP_SECURITY = ("starttls", "tls", "none")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
MEDIA_OFFLOADS = ("", "x-accel-redirect", "x-sendfile")


class ConfigError(RuntimeError):
    """The environment does not describe a configuration Tattletale can start with."""


@dataclass(frozen=True)
class Settings:
    env: str
    secret_key: str
    database_url: str
    storage_url: str
    instance_path: Path
    s3_endpoint_url: str | None = None
    broker_url: str | None = None
    redis_url: str | None = None
    port: int = 5000
    celery_queue: str = "tattletale"
    job_threads: int = 2
    job_max_attempts: int = 3
    # A running job whose heartbeat is older than this is presumed lost with its worker.
    # Heartbeats come from a thread of their own every sixth of this, whatever the job
    # is doing, so silence means the process is gone.
    job_stale_after_s: int = 60
    # How often the control pass (stale jobs, lost messages, periodic ticks) runs.
    job_reap_interval_s: int = 15
    # A queued, due job whose message has not been taken for this long is sent again.
    job_lost_after_s: int = 60
    # Transient failures (outages, throttling) are retried for this long after the
    # first one before the job fails: long enough to ride out a 15-minute outage.
    job_retry_span_s: int = 1200
    max_upload_bytes: int = 8 * 1024**3
    # Per user, over their unfinished uploads: how many, and how many bytes declared.
    # Each declared byte is a promise of staging space; without a bound one account
    # could reserve the whole disk in seconds.
    max_open_uploads_per_user: int = 20
    max_open_upload_bytes_per_user: int = 64 * 1024**3
    # ffmpeg's CPU niceness, so a transcode does not starve tip intake on the machine.
    transcode_nice: int = 10
    # Threads of each x264 encoder; 0: the pipeline's fixed default (see
    # media_pipeline.Limits); 1: about one core.
    transcode_threads: int = 0
    # An ffmpeg that did nothing (no CPU time, input read or output) this long is killed.
    transcode_stall_after_s: int = 60
    # Evidence may not be deleted before it is this old (an agency's retention rule).
    evidence_retention_days: int = 365
    # Replies under the agency's posts: each live post's are fetched this often, for
    # this many days after it went out, and at most this many pages a run (a viral
    # post's burst is then taken in turns with every other job).
    replies_poll_s: int = 300
    replies_window_days: int = 30
    replies_pages_per_run: int = 10
    session_idle_minutes: int = 30
    session_lifetime_hours: int = 12
    # Number of reverse proxies in front of the app whose X-Forwarded-For is trusted.
    trusted_proxies: int = 0
    log_format: str = "json"
    log_level: str = "INFO"
    # Fernet keys for secrets at rest; the first encrypts, all decrypt (rotation).
    encryption_keys: tuple[str, ...] = ()
    # None: each agency's own setting decides; True/False: overrides every agency.
    require_mfa: bool | None = None
    # HMAC key for tip receipts (kept outside the database: a stolen dump alone does
    # not let anyone test passphrases against the stored hashes).
    receipt_key: str = ""
    # Bearer token Prometheus sends to /metrics; unset, /metrics answers 404.
    metrics_token: str | None = None
    # Request rate limits (Flask-Limiter notation, ";" between several). Per client:
    # sign-in attempts (POSTs of either step), and requests that fail authentication
    # (bad or missing token, no or ended session); per API token: every request.
    # A whole agency may sign in from one address (its NAT) at shift change, and the
    # per-account lockout (portal.services.throttle) stops password guessing; these
    # limits stop floods before they reach Argon2, the token table and the audit log.
    rate_limit_sign_in: str = "30 per minute;300 per hour"
    rate_limit_auth_failures: str = "30 per minute;300 per hour"
    rate_limit_api: str = "600 per minute"  # per API token
    # Public forms, per client (a daily-rotating keyed hash of the address): tips sent,
    # and receipts tried (a wrong passphrase is a guess) or replies sent with one.
    rate_limit_tips: str = "10 per minute;60 per hour"
    rate_limit_receipts: str = "10 per minute;60 per hour"
    # Tips and tipster replies sent without a proof of work (the path that works
    # without JavaScript), per client, on top of the limits above: a flood script that
    # skips the puzzle gets this few.
    rate_limit_unproven: str = "3 per minute;12 per hour"
    # Files started by the tip form's resumable uploader, per client: a tip takes at
    # most tip_attachments_max of them, and a tipster may choose again a few times.
    rate_limit_tip_uploads: str = "30 per minute;120 per hour"
    rate_limit_key_prefix: str = "tattletale"
    # Proof of work on tips and tipster replies: leading zero bits of SHA-256 a
    # solution must have (each bit doubles the work; 16 is about a second in a
    # phone's browser). 0 turns it off (then no stricter limit either).
    proof_of_work_bits: int = 16
    # How long an issued challenge may be solved and spent.
    proof_of_work_max_age_s: int = 7200
    # HMAC key signing the challenges. Derived from the secret key (with a label of
    # its own) unless given: it only needs to be one the clients cannot know.
    proof_of_work_key: str = ""
    # How published renditions reach viewers. "" : the portal sends the bytes itself
    # (sendfile where the server has it); "x-accel-redirect" (nginx) or "x-sendfile"
    # (Apache, lighttpd): the portal checks and answers headers, the front proxy sends
    # the file, so no worker is held for a whole video per viewer.
    media_offload: str = ""
    # The front proxy's internal location the local store's keys are found under
    # (X-Accel-Redirect; X-Sendfile names the file's own path); see
    # docs/deploy/nginx.conf.
    media_offload_prefix: str = "/_media/"
    # An origin on the agency's own domain (a CDN or bucket behind it) that published
    # renditions are copied to; appeal pages then play from it. "" : the portal serves.
    public_media_url: str = ""
    # Where in the store the published copies go (the public origin serves this prefix).
    public_media_prefix: str = "public-media"
    # Where the portal is reached from outside: links in e-mails (sent by jobs, with
    # no request to take the host from) start with it.
    public_url: str = "http://localhost:5000"
    # Outgoing mail (portal/services/mail.py). No host: no mail is sent at all.
    smtp_host: str | None = None
    smtp_port: int = 587
    # "starttls" (upgrade on the submission port), "tls" (implicit TLS, port 465) or
    # "none" (a relay on the same machine or network only).
    smtp_security: str = "starttls"
    smtp_username: str | None = None
    smtp_password: str | None = None
    # A CA bundle for a relay whose certificate a private CA signed; unset: the
    # system's trusted CAs.
    smtp_ca_file: str | None = None
    smtp_timeout_s: int = 30
    mail_from: str = ""

    @property
    def sends_mail(self) -> bool:
        return bool(self.smtp_host)

    # The languages of the public site (portal/i18n.py), the first one the default; each
    # but English needs portal/translations/<code>/LC_MESSAGES/messages.po. Staff pages
    # are English only.
    languages: tuple[str, ...] = ("en", "es")

    # Files a tipster may attach to one tip or one answer, and how large each may be.
    tip_attachments_max: int = 5
    tip_attachment_max_bytes: int = 256 * 1024**2
    # Bytes of tip attachments not yet processed (or not yet part of a sent tip) the
    # server holds at once: a flood of uploads cannot fill the disk. Past it the oldest
    # unsent ones go first; files of sent tips are never dropped for room.
    tip_attachments_pending_bytes: int = 8 * 1024**3
    # A photo with more pixels is refused before it is decoded (decompression bombs).
    tip_image_max_pixels: int = 100_000_000
    tip_video_max_seconds: int = 900

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def is_testing(self) -> bool:
        return self.env == "testing"

    @property
    def uses_celery(self) -> bool:
        return bool(self.broker_url)


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


def _development_secret(instance_path: Path, name: str = "secret_key") -> str:
    """Generate the development signing key once and keep it in ``instance/``.

    Only for development: a key that survives restarts keeps sessions valid while
    the developer works. Production never gets here (it must be given a key).
    """
    key_file = instance_path / name
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _development_encryption_key(instance_path: Path) -> str:
    """Like :func:`_development_secret`: one key, generated once into ``instance/``."""
    key_file = instance_path / "encryption_keys"
    if key_file.exists():
        return key_file.read_text().strip()
    instance_path.mkdir(parents=True, exist_ok=True)
    key = _new_fernet_key()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def _new_fernet_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _encryption_keys(raw: str) -> tuple[str, ...]:
    """Comma-separated Fernet keys (32 bytes, URL-safe base64), newest first."""
    keys = tuple(part.strip() for part in raw.split(",") if part.strip())
    for position, key in enumerate(keys, start=1):
        try:
            valid = len(base64.urlsafe_b64decode(key.encode())) == 32
        except (binascii.Error, ValueError):
            valid = False
        if not valid:
            # The key itself is never echoed: it is a secret.
            raise ConfigError(
                f"TATTLETALE_ENCRYPTION_KEYS: key {position} is not a Fernet key "
                "(32 bytes in URL-safe base64; make one with "
                "'flask --app wsgi secrets generate-key')"
            )
    return keys


def _optional_bool(environ: Mapping[str, str], name: str) -> bool | None:
    raw = (environ.get(name) or "").strip().lower()
    if not raw:
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def normalise_database_url(url: str) -> str:
    """The SQLAlchemy URL for ``url``, with the PostgreSQL driver this project installs.

    Operators write ``postgresql://`` (or Heroku's ``postgres://``), the form libpq and
    every hosting panel give out; SQLAlchemy reads that as psycopg2, which is not
    installed, and the app would fail at its first query. A URL that names its driver
    (``postgresql+psycopg://``, ``postgresql+psycopg2://``) is left as written.
    """
    scheme, separator, rest = url.partition("://")
    if separator and scheme.lower() in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def _rate_limit(environ: Mapping[str, str], name: str, default: str) -> str:
    from limits import parse_many

    raw = (environ.get(name) or "").strip() or default
    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be rate limits like '30 per minute;300 per hour', not {raw!r}"
        ) from None
    return raw


def _languages(raw: str) -> tuple[str, ...]:
    """Language codes as Babel names them (``es``, ``pt_BR``), without repeats."""
    codes: list[str] = []
    for part in raw.split(","):
        code = part.strip().replace("-", "_")
        if not code:
            continue
        if not re.fullmatch(r"[a-z]{2,3}(_[A-Z]{2})?", code):
            raise ConfigError(
                f"TATTLETALE_LANGUAGES holds {code!r}: give language codes such as en, es, pt_BR"
            )
        if code not in codes:
            codes.append(code)
    if not codes:
        raise ConfigError("TATTLETALE_LANGUAGES must name at least one language")
    return tuple(codes)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from the environment, or raise :class:`ConfigError`."""
    env_map: Mapping[str, str] = os.environ if environ is None else environ
    env = env_map.get("TATTLETALE_ENV", "development") or "development"
    if env not in ENVIRONMENTS:
        raise ConfigError(f"TATTLETALE_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")

    instance_path = Path(
        env_map.get("TATTLETALE_INSTANCE_PATH") or PROJECT_ROOT / "instance"
    ).resolve()

    if env == "production":
        missing = [
            name
            for name in (
                "TATTLETALE_SECRET_KEY",
                "TATTLETALE_DATABASE_URL",
                "TATTLETALE_STORAGE_URL",
                "TATTLETALE_ENCRYPTION_KEYS",
                "TATTLETALE_RECEIPT_KEY",
            )
            if not env_map.get(name)
        ]
        if missing:
            raise ConfigError(
                "production needs these settings, which are not set: " + ", ".join(missing)
            )
        if not env_map["TATTLETALE_DATABASE_URL"].lower().startswith("postgres"):
            raise ConfigError(
                "production needs TATTLETALE_DATABASE_URL to be a PostgreSQL URL "
                "(postgresql://...); SQLite is for one machine in development"
            )
        for name in ("TATTLETALE_SECRET_KEY", "TATTLETALE_RECEIPT_KEY"):
            if len(env_map[name]) < 32:
                raise ConfigError(f"{name} must be at least 32 characters")

    secret_key = env_map.get("TATTLETALE_SECRET_KEY") or ""
    if not secret_key:
        if env == "testing":
            secret_key = secrets.token_urlsafe(48)
        else:
            secret_key = _development_secret(instance_path)

    receipt_key = env_map.get("TATTLETALE_RECEIPT_KEY") or ""
    if not receipt_key:
        if env == "testing":
            receipt_key = secrets.token_urlsafe(48)
        else:
            receipt_key = _development_secret(instance_path, "receipt_key")

    database_url = normalise_database_url(
        env_map.get("TATTLETALE_DATABASE_URL") or f"sqlite:///{instance_path / 'tattletale.db'}"
    )
    storage_url = env_map.get("TATTLETALE_STORAGE_URL") or f"file://{instance_path / 'media'}"
    if not (storage_url.startswith("file://") or storage_url.startswith("s3://")):
        raise ConfigError("TATTLETALE_STORAGE_URL must start with file:// or s3://")

    encryption_keys = _encryption_keys(env_map.get("TATTLETALE_ENCRYPTION_KEYS") or "")
    if not encryption_keys:
        if env == "testing":
            encryption_keys = (_new_fernet_key(),)
        else:
            encryption_keys = (_development_encryption_key(instance_path),)

    transcode_nice = _int(env_map, "TATTLETALE_TRANSCODE_NICE", 10)
    if transcode_nice > 19:
        raise ConfigError("TATTLETALE_TRANSCODE_NICE must be 0..19 (the range of nice)")

    proof_of_work_bits = _int(env_map, "TATTLETALE_POW_BITS", 16)
    if proof_of_work_bits > 32:
        raise ConfigError("TATTLETALE_POW_BITS must be 0..32 (above, a phone cannot solve it)")
    # Derived like the rate-limit client key: an HMAC of the secret key under a label
    # of its own, so knowing one derived key tells nothing of the secret or the others.
    proof_of_work_key = (
        env_map.get("TATTLETALE_POW_KEY")
        or hmac.new(
            secret_key.encode(), b"tattletale proof-of-work key", hashlib.sha256
        ).hexdigest()
    )
    if env == "production" and len(proof_of_work_key) < 32:
        raise ConfigError("TATTLETALE_POW_KEY must be at least 32 characters")

    media_offload = (env_map.get("TATTLETALE_MEDIA_OFFLOAD") or "").strip().lower()
    if media_offload not in MEDIA_OFFLOADS:
        raise ConfigError(
            "TATTLETALE_MEDIA_OFFLOAD must be x-accel-redirect or x-sendfile (or unset)"
        )
    media_offload_prefix = env_map.get("TATTLETALE_MEDIA_OFFLOAD_PREFIX") or "/_media/"
    if not media_offload_prefix.endswith("/"):
        media_offload_prefix += "/"
    public_media_url = (env_map.get("TATTLETALE_PUBLIC_MEDIA_URL") or "").strip().rstrip("/")
    if public_media_url:
        parts = urlsplit(public_media_url)
        if parts.scheme not in ("https", "http") or not parts.netloc or parts.query:
            raise ConfigError(
                "TATTLETALE_PUBLIC_MEDIA_URL must be an origin like https://media.example.org"
                " (optionally with a path), not " + repr(public_media_url)
            )
        if env == "production" and parts.scheme != "https":
            raise ConfigError("TATTLETALE_PUBLIC_MEDIA_URL must be https in production")
    public_media_prefix = (env_map.get("TATTLETALE_PUBLIC_MEDIA_PREFIX") or "public-media").strip(
        "/"
    )
    smtp_host = env_map.get("TATTLETALE_SMTP_HOST") or None
    smtp_security = (env_map.get("TATTLETALE_SMTP_SECURITY") or "starttls").lower()
    if smtp_security not in SMTP_SECURITY:
        raise ConfigError("TATTLETALE_SMTP_SECURITY must be starttls, tls or none")
    mail_from = env_map.get("TATTLETALE_MAIL_FROM") or ""
    if smtp_host and "@" not in mail_from:
        raise ConfigError("TATTLETALE_SMTP_HOST needs TATTLETALE_MAIL_FROM (an e-mail address)")
    if bool(env_map.get("TATTLETALE_SMTP_USERNAME")) != bool(
        env_map.get("TATTLETALE_SMTP_PASSWORD")
    ):
        raise ConfigError("give TATTLETALE_SMTP_USERNAME and TATTLETALE_SMTP_PASSWORD together")
    port = _int(env_map, "TATTLETALE_PORT", 5000, minimum=1)
    public_url = (env_map.get("TATTLETALE_PUBLIC_URL") or f"http://localhost:{port}").rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise ConfigError("TATTLETALE_PUBLIC_URL must start with https:// (or http://)")

    log_format = env_map.get("TATTLETALE_LOG_FORMAT", "json")
    if log_format not in ("json", "text"):
        raise ConfigError("TATTLETALE_LOG_FORMAT must be json or text")

    return Settings(
        env=env,
        secret_key=secret_key,
        database_url=database_url,
        storage_url=storage_url,
        instance_path=instance_path,
        s3_endpoint_url=env_map.get("TATTLETALE_S3_ENDPOINT_URL") or None,
        broker_url=env_map.get("TATTLETALE_BROKER_URL") or None,
        redis_url=env_map.get("TATTLETALE_REDIS_URL") or None,
        port=port,
        celery_queue=env_map.get("TATTLETALE_CELERY_QUEUE") or "tattletale",
        job_threads=_int(env_map, "TATTLETALE_JOB_THREADS", 2, minimum=1),
        job_max_attempts=_int(env_map, "TATTLETALE_JOB_MAX_ATTEMPTS", 3, minimum=1),
        job_stale_after_s=_int(env_map, "TATTLETALE_JOB_STALE_AFTER", 60, minimum=10),
        job_reap_interval_s=_int(env_map, "TATTLETALE_JOB_REAP_INTERVAL", 15, minimum=1),
        job_lost_after_s=_int(env_map, "TATTLETALE_JOB_LOST_AFTER", 60, minimum=5),
        job_retry_span_s=_int(env_map, "TATTLETALE_JOB_RETRY_SPAN", 1200, minimum=0),
        max_upload_bytes=_int(env_map, "TATTLETALE_MAX_UPLOAD_BYTES", 8 * 1024**3, minimum=1),
        max_open_uploads_per_user=_int(env_map, "TATTLETALE_MAX_OPEN_UPLOADS", 20, minimum=1),
        max_open_upload_bytes_per_user=_int(
            env_map, "TATTLETALE_MAX_OPEN_UPLOAD_BYTES", 64 * 1024**3, minimum=1
        ),
        transcode_nice=transcode_nice,
        transcode_threads=_int(env_map, "TATTLETALE_TRANSCODE_THREADS", 0),
        transcode_stall_after_s=_int(env_map, "TATTLETALE_TRANSCODE_STALL_AFTER", 60, minimum=5),
        evidence_retention_days=_int(env_map, "TATTLETALE_EVIDENCE_RETENTION_DAYS", 365),
        replies_poll_s=_int(env_map, "TATTLETALE_REPLIES_POLL_SECONDS", 300, minimum=30),
        replies_window_days=_int(env_map, "TATTLETALE_REPLIES_WINDOW_DAYS", 30),
        replies_pages_per_run=_int(env_map, "TATTLETALE_REPLIES_PAGES_PER_RUN", 10, minimum=1),
        session_idle_minutes=_int(env_map, "TATTLETALE_SESSION_IDLE_MINUTES", 30, minimum=1),
        session_lifetime_hours=_int(env_map, "TATTLETALE_SESSION_LIFETIME_HOURS", 12, minimum=1),
        trusted_proxies=_int(env_map, "TATTLETALE_TRUSTED_PROXIES", 0),
        log_format=log_format,
        log_level=(env_map.get("TATTLETALE_LOG_LEVEL") or "INFO").upper(),
        encryption_keys=encryption_keys,
        require_mfa=_optional_bool(env_map, "TATTLETALE_REQUIRE_MFA"),
        metrics_token=env_map.get("TATTLETALE_METRICS_TOKEN") or None,
        receipt_key=receipt_key,
        rate_limit_sign_in=_rate_limit(
            env_map, "TATTLETALE_RATELIMIT_SIGN_IN", Settings.rate_limit_sign_in
        ),
        rate_limit_auth_failures=_rate_limit(
            env_map, "TATTLETALE_RATELIMIT_AUTH_FAILURES", Settings.rate_limit_auth_failures
        ),
        rate_limit_api=_rate_limit(env_map, "TATTLETALE_RATELIMIT_API", Settings.rate_limit_api),
        rate_limit_tips=_rate_limit(env_map, "TATTLETALE_RATELIMIT_TIPS", Settings.rate_limit_tips),
        rate_limit_receipts=_rate_limit(
            env_map, "TATTLETALE_RATELIMIT_RECEIPTS", Settings.rate_limit_receipts
        ),
        rate_limit_unproven=_rate_limit(
            env_map, "TATTLETALE_RATELIMIT_UNPROVEN", Settings.rate_limit_unproven
        ),
        rate_limit_tip_uploads=_rate_limit(
            env_map, "TATTLETALE_RATELIMIT_TIP_UPLOADS", Settings.rate_limit_tip_uploads
        ),
        rate_limit_key_prefix=env_map.get("TATTLETALE_RATELIMIT_KEY_PREFIX") or "tattletale",
        proof_of_work_bits=proof_of_work_bits,
        proof_of_work_max_age_s=_int(env_map, "TATTLETALE_POW_MAX_AGE", 7200, minimum=60),
        proof_of_work_key=proof_of_work_key,
        media_offload=media_offload,
        media_offload_prefix=media_offload_prefix,
        public_media_url=public_media_url,
        public_media_prefix=public_media_prefix,
        public_url=public_url,
        smtp_host=smtp_host,
        smtp_port=_int(
            env_map, "TATTLETALE_SMTP_PORT", 465 if smtp_security == "tls" else 587, minimum=1
        ),
        smtp_security=smtp_security,
        smtp_username=env_map.get("TATTLETALE_SMTP_USERNAME") or None,
        smtp_password=env_map.get("TATTLETALE_SMTP_PASSWORD") or None,
        smtp_ca_file=env_map.get("TATTLETALE_SMTP_CA_FILE") or None,
        smtp_timeout_s=_int(env_map, "TATTLETALE_SMTP_TIMEOUT", 30, minimum=1),
        mail_from=mail_from,
        languages=_languages(env_map.get("TATTLETALE_LANGUAGES") or "en,es"),
        tip_attachments_max=_int(env_map, "TATTLETALE_TIP_ATTACHMENTS_MAX", 5),
        tip_attachment_max_bytes=_int(
            env_map, "TATTLETALE_TIP_ATTACHMENT_MAX_BYTES", 256 * 1024**2, minimum=1
        ),
        tip_attachments_pending_bytes=_int(
            env_map, "TATTLETALE_TIP_ATTACHMENTS_PENDING_BYTES", 8 * 1024**3, minimum=1
        ),
        tip_image_max_pixels=_int(
            env_map, "TATTLETALE_TIP_IMAGE_MAX_PIXELS", 100_000_000, minimum=1
        ),
        tip_video_max_seconds=_int(env_map, "TATTLETALE_TIP_VIDEO_MAX_SECONDS", 900, minimum=1),
    )
