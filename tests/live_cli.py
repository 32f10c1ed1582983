"""``tape`` with the test pipelines too (``test-trading``), for tests that run it as a real
process: ``python -m tests.live_cli ARGS`` from the repository root."""

from engine.app.cli import app
from tests.trading_support import PIPELINES

if __name__ == "__main__":
    app(obj=PIPELINES)
