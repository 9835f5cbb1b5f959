"""What a job's failure means: another attempt may fix it, or it cannot.

* permanent: bad input, a missing object, a refused request (4xx). The job fails at
  once with its reason; retrying would only repeat it.
* transient: the database, the store or the broker is unreachable, timing out,
  throttling or answering 5xx. The job is tried again with jittered backoff for as long
  as ``TATTLETALE_JOB_RETRY_SPAN`` allows, without using up its attempts: an outage of
  a service is not the job's fault.
* error: anything else (most likely a bug). Retried up to the job's ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

ErrorKind = Literal["permanent", "transient", "error"]

# S3 and other AWS error codes that mean "slow down" or "try again", whatever the status.
_RETRYABLE_AWS_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "SlowDown",
        "RequestLimitExceeded",
        "ProvisionedThroughputExceededException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
    }
)


class PermanentJobError(Exception):
    """A failure that another attempt cannot fix (bad input, missing object)."""


class TransientJobError(Exception):
    """A failure of something outside the job that is expected to come back."""


class ClaimLost(Exception):
    """The run was taken from this worker (the reaper put the job back): stop, and
    write nothing."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )


def _kind_of(exc: BaseException) -> ErrorKind | None:
    if isinstance(exc, PermanentJobError):
        return "permanent"
    if isinstance(exc, TransientJobError | ConnectionError | TimeoutError):
        return "transient"
    # Text that cannot be encoded (a lone surrogate in a caption) fails the same way
    # on every attempt.
    if isinstance(exc, UnicodeError):
        return "permanent"
    kind = _botocore_kind(exc)
    if kind is not None:
        return kind
    return _database_kind(exc)


def _botocore_kind(exc: BaseException) -> ErrorKind | None:
    try:
        from botocore import exceptions as boto
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return None
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ...
        return "transient"
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        if error.get("Code") in _RETRYABLE_AWS_CODES or status >= 500 or status == 429:
            return "transient"
        return "permanent"
    return None


def _database_kind(exc: BaseException) -> ErrorKind | None:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return "transient"
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError):
        # Connection refused or dropped, server restarting, "database is locked".
        return "transient"
    try:
        import psycopg
    except ImportError:
        return None
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return "transient"
    return None


def classify_error(exc: BaseException) -> ErrorKind:
    """The first exception in the cause chain that says what it is decides."""
    for link in _chain(exc):
        kind = _kind_of(link)
        if kind is not None:
            return kind
    return "error"


def describe_error(exc: BaseException) -> str:
    """A reason a person can read: the message, with its type unless it is ours."""
    message = str(exc).strip()
    if isinstance(exc, UnicodeError):
        return (
            "The text contains a character that cannot be written (an unpaired "
            f"surrogate or a broken encoding); correct it in a new edit. ({type(exc).__name__}: "
            f"{message})"
        )
    if isinstance(exc, PermanentJobError | TransientJobError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
