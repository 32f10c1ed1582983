"""``tape serve``: the dashboard over a data directory (docs/dashboard.md).

Read-only by default: sessions and runs, a run's charts, causal traces, verification from
the page, a live session's status as it grows. The only writes are operator commands
(halt, resume, flatten) journaled into a session's journal, and only with ``--control``.
"""

from engine.app.web.app import create_app
from engine.app.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]
