"""gunicorn configuration for a web machine: ``gunicorn -c config/gunicorn.py wsgi:app``.

The same settings ``flask serve`` uses (``portal/http/server.py``), read from the
``TATTLETALE_WEB_*`` variables; bind with ``TATTLETALE_BIND`` (e.g. ``0.0.0.0:8000``).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from portal.http.server import server_options  # noqa: E402

globals().update(server_options())
