"""The storage check of a new strategy version against the plan's bounds."""

from __future__ import annotations

from fta.strategies.service import StrategyStorage


def _storage(versions: int, size: int) -> StrategyStorage:
    return StrategyStorage(versions=versions, bytes=size, max_versions=10, max_bytes=1000)


def test_a_version_that_fits_is_accepted() -> None:
    assert _storage(9, 900).refusal(100) is None


def test_the_version_count_is_checked_first_and_says_what_to_do() -> None:
    refusal = _storage(10, 0).refusal(1)
    assert refusal is not None
    assert "10 strategy versions, your plan's limit" in refusal
    assert "DELETE /api/v1/strategies/{id}/versions/{version}" in refusal
    assert "plan that stores more" in refusal


def test_bytes_past_the_quota_are_refused_with_the_figures() -> None:
    refusal = _storage(1, 900).refusal(101)
    assert refusal is not None
    assert "900 bytes" in refusal and "(101 bytes)" in refusal and "limit of 1000" in refusal
