from freqtrade.strategy import IStrategy


class Quick(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1
