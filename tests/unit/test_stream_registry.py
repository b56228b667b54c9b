"""The log-stream bounds on their own: per tenant, in all, and leases given back once."""

from __future__ import annotations

import pytest

from fta.web.streams import StreamRegistry, StreamsBusy, TooManyStreams


def test_a_tenant_holds_its_cap_and_others_are_still_served() -> None:
    registry = StreamRegistry(per_tenant=2, total=5)
    leases = [registry.acquire("a"), registry.acquire("a")]
    with pytest.raises(TooManyStreams) as refused:
        registry.acquire("a")
    assert refused.value.status == 429 and refused.value.retry_after > 0
    registry.acquire("b")
    leases[0].release()
    registry.acquire("a")


def test_the_total_is_held_whoever_asks() -> None:
    registry = StreamRegistry(per_tenant=2, total=3)
    first = registry.acquire("a")
    registry.acquire("a")
    registry.acquire("b")
    with pytest.raises(StreamsBusy) as busy:
        registry.acquire("c")
    assert busy.value.status == 503
    first.release()
    registry.acquire("c")


def test_a_lease_given_back_twice_frees_one_place_only() -> None:
    registry = StreamRegistry(per_tenant=1, total=10)
    lease = registry.acquire("a")
    lease.release()
    lease.release()
    registry.acquire("a")
    with pytest.raises(TooManyStreams):
        registry.acquire("a")
