"""Risk, a simulated venue and the portfolio as one stage (``trading``); docs/trading.md."""

from streams.trading.config import TradingConfig, trading_defaults
from streams.trading.report import Report, build_report, report_rows
from streams.trading.stage import TRADING_STAGE, TradingStage

__all__ = [
    "TRADING_STAGE",
    "Report",
    "TradingConfig",
    "TradingStage",
    "build_report",
    "report_rows",
    "trading_defaults",
]
