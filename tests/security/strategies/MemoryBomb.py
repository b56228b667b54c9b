"""Memory bomb, in populate_indicators: allocates and touches memory in 64 MiB steps, up to
four times the default plan's 1 GiB (bounded, so a machine without the limit survives)."""

import json

from freqtrade.strategy import IStrategy
from pandas import DataFrame

STEP = 64 * 1024 * 1024
STEPS = 64
HOARD: list[bytes] = []


class MemoryBomb(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        for step in range(1, STEPS + 1):
            HOARD.append(b"\x01" * STEP)
            report = {"probe": "memory-bomb", "allocated_mib": step * STEP >> 20}
            print("PROBE " + json.dumps(report), flush=True)
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
