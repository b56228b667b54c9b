"""The startup candle count read statically from a strategy's source."""

from __future__ import annotations

from fta.freqtrade.startup import declared_startup_candles

HEADER = "from freqtrade.strategy import IStrategy\n\n"


def test_a_literal_on_the_class() -> None:
    source = (
        HEADER + "class Mine(IStrategy):\n    timeframe = '5m'\n    startup_candle_count = 20\n"
    )
    assert declared_startup_candles(source, "Mine") == 20


def test_an_annotated_literal() -> None:
    source = HEADER + "class Mine(IStrategy):\n    startup_candle_count: int = 200\n"
    assert declared_startup_candles(source, "Mine") == 200


def test_inherited_from_a_base_in_the_same_file() -> None:
    source = HEADER + (
        "class Base(IStrategy):\n    startup_candle_count = 50\n\n"
        "class Middle(Base):\n    stoploss = -0.1\n\n"
        "class Mine(Middle):\n    timeframe = '1h'\n"
    )
    assert declared_startup_candles(source, "Mine") == 50
    # The class's own value wins over its base's.
    own = source + "\nclass Other(Base):\n    startup_candle_count = 7\n"
    assert declared_startup_candles(own, "Other") == 7


def test_absent_is_freqtrades_default() -> None:
    assert declared_startup_candles(HEADER + "class Mine(IStrategy):\n    pass\n", "Mine") == 0
    # Only the named class counts, not another class of the file.
    source = HEADER + (
        "class Other(IStrategy):\n    startup_candle_count = 9\n\n"
        "class Mine(IStrategy):\n    pass\n"
    )
    assert declared_startup_candles(source, "Mine") == 0


def test_a_value_that_is_not_a_literal_reads_as_undeclared() -> None:
    for value in ("2 * 10", "PERIOD", "20.0", "True", "-5", "int('20')"):
        source = (
            HEADER + f"PERIOD = 20\n\nclass Mine(IStrategy):\n    startup_candle_count = {value}\n"
        )
        assert declared_startup_candles(source, "Mine") == 0, value
    # A non-literal on the class hides its base's literal, as it would at run time.
    source = HEADER + (
        "class Base(IStrategy):\n    startup_candle_count = 50\n\n"
        "class Mine(Base):\n    startup_candle_count = Base.startup_candle_count + 1\n"
    )
    assert declared_startup_candles(source, "Mine") == 0
    prop = HEADER + (
        "class Base(IStrategy):\n    startup_candle_count = 50\n\n"
        "class Mine(Base):\n    @property\n    def startup_candle_count(self):\n        return 9\n"
    )
    assert declared_startup_candles(prop, "Mine") == 0


def test_unparsable_source_reads_as_undeclared() -> None:
    assert declared_startup_candles("class Mine(:\n", "Mine") == 0
