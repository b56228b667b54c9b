"""Floods the log, on import: about 50 MB of lines, then 10 s of output as fast as one CPU
can write it. The job then runs its backtest as usual."""

import json
import sys
import time

from freqtrade.strategy import IStrategy
from pandas import DataFrame

FLOOD_LINES = 50_000
FLOOD_LINE = "x" * 1000
FIREHOSE_SECONDS = 10
FIREHOSE_BLOCK = (("y" * 4000 + "\n") * 16).encode()

print("PROBE " + json.dumps({"probe": "flood", "lines": FLOOD_LINES}), flush=True)
for number in range(FLOOD_LINES):
    print(f"flood {number:06d} {FLOOD_LINE}")
deadline = time.monotonic() + FIREHOSE_SECONDS
while time.monotonic() < deadline:
    sys.stdout.buffer.write(FIREHOSE_BLOCK)
sys.stdout.flush()


class LogFlooder(IStrategy):
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
