"""Never finishes: stands for a stuck or deliberately slow strategy."""

import time

from freqtrade.strategy import IStrategy

time.sleep(3600)


class Sleeper(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1
