"""CPU burn on every core, on import: one busy-looping process per CPU the container sees
(at least two), for longer than any test lets the job live."""

import json
import multiprocessing
import os
import time

from freqtrade.strategy import IStrategy
from pandas import DataFrame

BURN_SECONDS = 600


def _spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


def _burn() -> None:
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_spin, args=(BURN_SECONDS,))
        for _ in range(max(2, os.cpu_count() or 1))
    ]
    for worker in workers:
        worker.start()
    print("PROBE " + json.dumps({"probe": "cpu-burn", "processes": len(workers)}), flush=True)
    for worker in workers:
        worker.join()


_burn()


class CpuBurner(IStrategy):
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
