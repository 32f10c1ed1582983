"""A run's outputs as chart series: what the dashboard (``tape serve``) and ``tape report
--plot`` draw, read straight from the log (docs/dashboard.md)."""

from engine.app.runview.data import RunData, open_run
from engine.app.runview.series import Series, downsample

__all__ = ["RunData", "Series", "downsample", "open_run"]
