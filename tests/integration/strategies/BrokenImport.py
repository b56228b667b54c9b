"""Raises while being imported."""

from freqtrade.strategy import IStrategy

raise RuntimeError("boom while importing BrokenImport")


class BrokenImport(IStrategy):
    timeframe = "5m"
