"""Market-data gateway: the only door from job containers to exchanges' public market data.

URL layout: the exchange is the first path segment, then the exchange's own path, so that a
ccxt `urls.api` entry is simply rewritten from ``https://api.binance.com/api/v3`` to
``http://<gateway>:8090/binance/api/v3``; another exchange would be mounted at
``/<exchange>/...`` beside it. Served for Binance spot, GET only, exactly the calls that
freqtrade 2026.9 was seen to make for download-data, backtest, hyperopt and a dry-run bot::

    /binance/api/v3/exchangeInfo   markets (every command, at start)
    /binance/api/v3/klines         candles (download-data, dry-run bot)
    /binance/api/v3/time           server time (dry-run bot, at start)
    /binance/api/v3/depth          order book (dry-run bot, order-book pricing and fills)
    /binance/api/v3/ticker/24hr    ticker (dry-run bot, ticker pricing)

Any other path answers 404, any other method 405, always as JSON in Binance's error format
(``{"code": ..., "msg": ...}``); bad parameters answer 400 with Binance's error codes.
``/healthz`` is the gateway's own health check.

Per tenant: the gateway serves every tenant's network, and a tenant's network is its subnet
(the source address masked to ``FTA_TENANT_SUBNET_PREFIX``, default 27). Each network may send
``FTA_GATEWAY_TENANT_RATE`` requests per second (default 100; ccxt paces Binance at 20 per
process) with bursts of ``FTA_GATEWAY_TENANT_BURST`` (200), and have
``FTA_GATEWAY_TENANT_CONCURRENCY`` (24) in flight. Past either it answers 429 in Binance's
format (``{"code": -1003, ...}``) with ``Retry-After``, before any other work, so that one
tenant's flood does not slow the others and ccxt backs off as it does from Binance.

Modes (``FTA_MARKET_DATA_MODE``): ``replay`` serves the shipped markets fixture and
deterministic synthetic candles (offline, for tests and the demo: not market history);
``recorded`` serves the candles the operator imported with ``fta market-data import`` from
``FTA_MARKET_DATA_STORE`` (klines and exchangeInfo only: no live ticker or order book);
``proxy`` forwards validated requests to ``FTA_MARKET_DATA_UPSTREAM`` with a TTL cache and
single-flight.
Run with ``python -m fta.gateway`` (port ``FTA_GATEWAY_PORT``, default 8090).
"""
