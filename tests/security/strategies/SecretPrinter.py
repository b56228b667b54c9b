"""Prints secret-shaped strings, on import, then fails with one in its error message: the
output of a careless strategy (or one that found a credential) as it reaches the logs.

The values come from PARAMS: the test generates them, so no secret-shaped text sits in the
repository.
"""

import json

from freqtrade.strategy import IStrategy
from pandas import DataFrame

PARAMS: dict = {}

print("PROBE " + json.dumps({"probe": "secret-printer", "kinds": sorted(PARAMS)}), flush=True)
print(f"signed in with jwt {PARAMS['jwt']}", flush=True)
print(f"aws key id {PARAMS['aws_key_id']} in use", flush=True)
print(f"connecting with password={PARAMS['password']} now", flush=True)
print(f"paypal client secret {PARAMS['paypal_secret']} loaded", flush=True)
print(f"database at postgresql://fta:{PARAMS['url_password']}@db:5432/fta", flush=True)
raise RuntimeError(f"exchange refused key {PARAMS['aws_key_id']}")


class SecretPrinter(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe
