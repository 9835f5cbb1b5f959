"""gunicorn configuration for a web machine: ``gunicorn -c config/gunicorn.py wsgi:app``.

The same settings ``flask serve`` uses (``portal/http/server.py``), read from the
``TATTLETALE_WEB_*`` variables; bind with ``TATTLETALE_BIND`` (e.g. ``0.0.0.0:8000``).

With ``TATTLETALE_WEB_POOL=staff`` it is the staff pool instead: workers of their own
for ``/staff/`` and ``/api/`` (the load balancer's rule, README "Scale-out"), bound to
``TATTLETALE_STAFF_BIND``, sized by ``TATTLETALE_STAFF_WORKERS`` and
``TATTLETALE_STAFF_THREADS``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.http.server import server_options  # noqa: E402

globals().update(server_options())
