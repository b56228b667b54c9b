"""A victim tenant's ordinary strategy with secrets of its own: one in its source (so in
Postgres), one written, on import, into its data volume. Other tenants must never see either."""

import json
from pathlib import Path

from freqtrade.strategy import IStrategy
from pandas import DataFrame

PARAMS: dict = {}
VAULT = Path("/freqtrade/user_data/keeper/canary.txt")

VAULT.parent.mkdir(parents=True, exist_ok=True)
VAULT.write_text(f"volume canary {PARAMS['volume_canary']}\n")
print("PROBE " + json.dumps({"probe": "canary-keeper", "path": str(VAULT)}), flush=True)


class CanaryKeeper(IStrategy):
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
