"""Spins for a known CPU time once, when the bot (or backtest) starts, then trades nothing."""

import time

from freqtrade.strategy import IStrategy

BURN_CPU_SECONDS = 20.0


class Burner(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def bot_start(self, **kwargs) -> None:
        started = time.process_time()
        while time.process_time() - started < BURN_CPU_SECONDS:
            pass

    def populate_indicators(self, dataframe, metadata):
        return dataframe

    def populate_entry_trend(self, dataframe, metadata):
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe, metadata):
        dataframe["exit_long"] = 0
        return dataframe
