"""Writes markup wherever a page shows what a strategy wrote: its log lines and its trades'
entry tags. Shown as text, it runs nothing."""

import logging

from freqtrade.strategy import IStrategy
from pandas import DataFrame

logger = logging.getLogger(__name__)
MARKUP = '<img src=x onerror="alert(document.domain)"><script>alert(1)</script>'


class MarkupWriter(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 100.0}
    stoploss = -0.99
    startup_candle_count = 1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        logger.info("%s %s", metadata["pair"], MARKUP)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        every_hour = dataframe.index % 12 == 0
        dataframe.loc[every_hour, "enter_long"] = 1
        dataframe.loc[every_hour, "enter_tag"] = MARKUP
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe.loc[dataframe.index % 12 == 6, "exit_long"] = 1
        return dataframe
