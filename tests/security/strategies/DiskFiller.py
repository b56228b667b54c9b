"""Fills every disk it can reach, on import.

Writes outside the allowed paths (the root file system is read-only, the candle cache is
mounted read-only), and fills /tmp, /dev/shm and the tenant's own data volume up to four times
the default plan's /tmp (each file is removed again). The job then runs its backtest as usual.
"""

import errno
import json
import os

from freqtrade.strategy import IStrategy
from pandas import DataFrame

CHUNK = b"\x00" * (1024 * 1024)
FILL_CEILING_MIB = 1024
OUTSIDE_ALLOWED = [
    "/fta-probe",
    "/etc/fta-probe",
    "/usr/bin/fta-probe",
    "/opt/freqtrade/fta-probe",
    "/freqtrade/fta-probe",
    "/candles/fta-probe",
    "/var/tmp/fta-probe",
    "/run/fta-probe",
]


def _report(**data: object) -> None:
    print("PROBE " + json.dumps(data), flush=True)


def _error(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, str(exc.errno))


def _write(path: str) -> str:
    try:
        with open(path, "wb") as handle:
            handle.write(b"fta")
    except OSError as exc:
        return _error(exc)
    return "written"


def _fill(path: str) -> dict[str, object]:
    written, refused = 0, None
    try:
        with open(path, "wb", buffering=0) as handle:
            for _ in range(FILL_CEILING_MIB):
                written += handle.write(CHUNK)
    except OSError as exc:
        refused = _error(exc)
    finally:
        if os.path.exists(path):
            written = os.path.getsize(path)
            os.unlink(path)
    return {"path": path, "written": written, "refused": refused}


_report(probe="write-outside", results={path: _write(path) for path in OUTSIDE_ALLOWED})
_report(probe="fill", **_fill("/tmp/fta-fill"))
_report(probe="fill", **_fill("/dev/shm/fta-fill"))
_report(probe="fill", **_fill("/freqtrade/user_data/fta-fill"))


class DiskFiller(IStrategy):
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
