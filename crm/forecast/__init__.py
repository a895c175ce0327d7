"""Sales forecasting: period totals, a Monte Carlo range, daily snapshots and a backtest of the methods.

docs/forecasting.md defines every number. Use cases take the reader (`actor`) and need `forecast.view`; they count
only the deals the reader may read.
"""
from crm.forecast.backtest import Backtest, backtest
from crm.forecast.montecarlo import ForecastRange, forecast_range
from crm.forecast.periods import PERIOD_KINDS, PeriodKind, period_bounds, previous_periods
from crm.forecast.scope import WEIGHTINGS, ForecastFilter, Weighting
from crm.forecast.snapshots import list_snapshots, take_snapshot
from crm.forecast.totals import ForecastSummary, forecast_summary

__all__ = [
    "PERIOD_KINDS", "WEIGHTINGS", "Backtest", "ForecastFilter", "ForecastRange", "ForecastSummary", "PeriodKind",
    "Weighting", "backtest", "forecast_range", "forecast_summary", "list_snapshots", "period_bounds",
    "previous_periods", "take_snapshot",
]
