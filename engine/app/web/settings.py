"""What the dashboard is given by the command line (nothing deeper reads flags or env)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from engine.runtime.topology import Catalog

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class WebSettings:
    """The dashboard's configuration (see ``tape serve --help``)."""

    data: Path
    """The data directory: its log, runs and models."""
    pipelines: Catalog
    """Pipelines that runs are verified and traced with."""
    db_url: str | None = None
    """The analyst store, queried read-only (``engine.app.store.query``); None: no SQL page."""
    models: Path | None = None
    """Model store (default ``<data>/models``)."""
    control: bool = False
    """Whether operator commands (halt, resume, flatten) may be journaled."""
    operator: str = "dashboard"
    """Who the journaled commands name as their operator."""
    host: str = "127.0.0.1"
    """The address served on: requests must name it (or a loopback name) as their Host."""
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    """Per-server secret every state-changing request must carry (X-Tapedeck-Token): a page
    of another site cannot read it, so it cannot make the browser post to the dashboard."""

    @property
    def allowed_hosts(self) -> list[str]:
        """Host header values accepted (a guard against DNS rebinding)."""
        if self.host in ("0.0.0.0", "::"):
            return ["*"]  # the operator chose to serve every interface
        return sorted({self.host, *LOOPBACK_HOSTS})
