"""Takes SECONDS before it trades, saying so each second: long enough for the worker that
started its job to stop, and for the next one to take the job over."""

import time

from freqtrade.strategy import IStrategy
from pandas import DataFrame

SECONDS = 20

for second in range(1, SECONDS + 1):
    print(f"patient: second {second}", flush=True)
    time.sleep(1)


class Patient(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 1
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
