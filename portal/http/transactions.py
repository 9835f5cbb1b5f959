"""Who commits: the request (or the job), never the service.

The rule, for every request of every audience: a service function adds and changes
rows and flushes (so ids exist and constraints are checked), and the request that
called it commits once it has answered successfully (status below 400), or rolls
everything back otherwise. A job commits through its runner in the same way
(portal/jobs/execution.py), and a CLI command commits itself.

A service commits on its own only where the record must survive the refusal or the
failure that follows it, and says why at that line: a failed sign-in counted against
the account (portal/services/users.py, throttle.py, mfa.py), an upload's durable
offset that a dropped connection must not undo (portal/services/uploads.py), a
session's activity (sessions.py). Audit entries of refusals are committed by the
code that records them, before it answers 4xx.
"""

from __future__ import annotations

from flask import Flask, Response

from portal.extensions import db


def init_app(app: Flask) -> None:
    @app.after_request
    def commit_or_roll_back(response: Response) -> Response:
        if response.status_code < 400:
            db.session.commit()
        else:
            db.session.rollback()
        return response
