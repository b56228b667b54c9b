"""The gateway's metrics: each source network's admitted and refused requests, served to the
control network and refused to the tenants' (whose traffic is none of another tenant's)."""

from __future__ import annotations

import asyncio

import httpx

from fta.gateway.app import build_app
from fta.gateway.tenant_limits import TenantLimits

TENANT = ("10.210.0.40", 40000)
CONTROL = ("172.30.0.7", 40000)
TICKER = "/binance/api/v3/klines?symbol=BTCUSDT&interval=5m&limit=2"


async def _ask(app: object, client: tuple[str, int], path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=client)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
        return await http.get(path)


def test_a_tenants_admitted_and_refused_requests_are_counted_for_the_control_network() -> None:
    # One request at once and no refill: the tenant's second request is refused.
    limits = TenantLimits(rate=1e-9, burst=1, concurrency=4, clock=lambda: 0.0)
    app = build_app("replay", tenant_limits=limits, tenant_pool="10.210.0.0/16")

    async def scenario() -> tuple[list[int], httpx.Response, httpx.Response]:
        codes = [(await _ask(app, TENANT, TICKER)).status_code for _ in range(2)]
        return codes, await _ask(app, TENANT, "/metrics"), await _ask(app, CONTROL, "/metrics")

    codes, from_tenant, from_control = asyncio.run(scenario())
    assert codes == [200, 429]
    # Its own metrics request counts against its limits too: refused before anything.
    assert from_tenant.status_code in (404, 429)
    assert "fta_gateway" not in from_tenant.text
    assert from_control.status_code == 200
    assert from_control.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = from_control.text
    assert 'fta_gateway_requests_total{network="10.210.0.32/27",outcome="admitted"} 1\n' in text
    assert 'fta_gateway_requests_total{network="10.210.0.32/27",outcome="refused"} 2\n' in text
    assert "fta_gateway_tracked_networks 2\n" in text


def test_a_tenant_network_is_refused_the_metrics() -> None:
    app = build_app("replay", tenant_pool="10.210.0.0/16")
    refused = asyncio.run(_ask(app, TENANT, "/metrics"))
    assert refused.status_code == 404 and "fta_gateway" not in refused.text
    mapped = asyncio.run(_ask(app, ("::ffff:10.210.3.9", 1), "/metrics"))
    assert mapped.status_code == 404
