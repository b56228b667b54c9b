"""The three sources of candles, and which one the platform uses now.

The gateway's mode decides it (FTA_MARKET_DATA_MODE): `replay` serves synthetic candles,
`recorded` the candles the operator imported, `proxy` the exchange's own. Everything that holds
candles keeps them apart by source (the shared cache's rows and directories), so a change of
mode never lets a job read candles of another source, and every result says which it used.
"""

from __future__ import annotations

from enum import StrEnum


class DataSource(StrEnum):
    SYNTHETIC = "synthetic"
    RECORDED = "recorded"
    EXCHANGE = "exchange"


MODES: dict[str, DataSource] = {
    "replay": DataSource.SYNTHETIC,
    "recorded": DataSource.RECORDED,
    "proxy": DataSource.EXCHANGE,
}

NOTES: dict[DataSource, str] = {
    DataSource.SYNTHETIC: "synthetic candles generated for testing, not market history",
    DataSource.RECORDED: "market history recorded from the exchange, imported by the operator",
    DataSource.EXCHANGE: "market history fetched from the exchange",
}


def source_of_mode(mode: str) -> DataSource:
    try:
        return MODES[mode]
    except KeyError:
        raise ValueError(
            f"unknown market-data mode {mode!r}; expected one of {', '.join(MODES)}"
        ) from None


def label(source: str) -> dict[str, str]:
    """How a result names the candles it ran on."""
    data_source = DataSource(source)
    return {"source": data_source.value, "note": NOTES[data_source]}
