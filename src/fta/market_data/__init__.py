"""Where the platform's candles come from, and the operator's recorded market data."""
