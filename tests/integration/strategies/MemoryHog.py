"""Allocates and touches more memory than the default plan allows."""

from freqtrade.strategy import IStrategy

HOG = [b"\x01" * (256 * 1024 * 1024) for _ in range(8)]


class MemoryHog(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1
