"""Ignores SIGTERM and SIGINT and sleeps, on import: a job that will not stop when asked."""

import json
import signal
import time

from freqtrade.strategy import IStrategy
from pandas import DataFrame

SLEEP_SECONDS = 3600

signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGINT, signal.SIG_IGN)
print(
    "PROBE " + json.dumps({"probe": "deaf-sleeper", "ignoring": ["SIGTERM", "SIGINT"]}), flush=True
)
time.sleep(SLEEP_SECONDS)


class DeafSleeper(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
