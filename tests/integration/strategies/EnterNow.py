"""Enters on every candle and holds: a dry-run bot on it opens a trade at once."""

from freqtrade.strategy import IStrategy
from pandas import DataFrame


class EnterNow(IStrategy):
    timeframe = "1m"
    minimal_roi = {"0": 100.0}
    stoploss = -0.99
    startup_candle_count = 1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
