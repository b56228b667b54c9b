"""Fork bomb, on import: starts processes until the kernel refuses, keeps every one alive,
and keeps pressing against the limit until the platform stops the job.

Bounded far above any plan's pids limit (CEILING processes), so that a machine whose limit
is missing survives the test that finds out. The processes are `sleep`s started with
posix_spawn (a vfork): each holds a pid without a copy of freqtrade's memory, and a thousand
start within a second, so the pids limit is what stops the bomb, not memory or time.
"""

import errno
import json
import os
import time

from freqtrade.strategy import IStrategy
from pandas import DataFrame

CEILING = 1024
PRESS_SECONDS = 600


def _spawn() -> None:
    os.posix_spawn("/bin/sleep", ["sleep", str(PRESS_SECONDS)], {})


def _bomb() -> None:
    children, refused = 0, None
    while children < CEILING:
        try:
            _spawn()
        except OSError as exc:
            refused = errno.errorcode.get(exc.errno or 0, str(exc.errno))
            break
        children += 1
    report = {"probe": "fork-bomb", "children": children, "refused": refused}
    print("PROBE " + json.dumps(report), flush=True)
    deadline = time.monotonic() + PRESS_SECONDS
    while time.monotonic() < deadline:
        try:
            _spawn()
        except OSError:
            time.sleep(0.1)


_bomb()


class ForkBomb(IStrategy):
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
