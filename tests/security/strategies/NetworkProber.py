"""Tries every way out of its tenant network, on import, and prints what answered.

TCP connects (with an HTTP request) to the targets the test names in PARAMS and to the host
through the network's default gateway, HTTP requests to the market-data gateway (a served
path and a path it does not serve), and DNS lookups of outside names. All attempts run at
once, each bounded by a few seconds. The job then runs its backtest as usual.
"""

import json
import socket
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from freqtrade.strategy import IStrategy
from pandas import DataFrame

PARAMS: dict = {}
TIMEOUT = 3.0
OUTPUT = threading.Lock()


def _report(**data: object) -> None:
    # One write per line, one thread at a time: reports never interleave.
    with OUTPUT:
        sys.stdout.write("PROBE " + json.dumps(data) + "\n")
        sys.stdout.flush()


def _default_gateway() -> str:
    for line in Path("/proc/net/route").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":
            return socket.inet_ntoa(bytes.fromhex(fields[2])[::-1])
    return ""


def _tcp(name: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: probe\r\n\r\n")
            reply = conn.recv(200).decode(errors="replace")
    except OSError as exc:
        _report(probe="tcp", name=name, target=f"{host}:{port}", connected=False, error=repr(exc))
        return
    _report(probe="tcp", name=name, target=f"{host}:{port}", connected=True, reply=reply)


def _http(name: str, url: str) -> None:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310
            status, body = response.status, response.read(200).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(200).decode(errors="replace")
    except OSError as exc:
        _report(probe="http", name=name, url=url, status=None, error=repr(exc))
        return
    _report(probe="http", name=name, url=url, status=status, body=body)


def _dns(name: str) -> None:
    try:
        addresses = sorted({info[4][0] for info in socket.getaddrinfo(name, 443)})
    except OSError as exc:
        _report(probe="dns", name=name, addresses=[], error=repr(exc))
        return
    _report(probe="dns", name=name, addresses=addresses)


def _probe() -> None:
    gateway = _default_gateway()
    targets = {name: tuple(target) for name, target in PARAMS["tcp"].items()}
    for name, port in PARAMS["via_default_gateway"].items():
        targets[name] = (gateway, port)
    _report(probe="route", default_gateway=gateway)
    with ThreadPoolExecutor(max_workers=32) as pool:
        for name, (host, port) in targets.items():
            pool.submit(_tcp, name, host, port)
        for name, url in PARAMS["http"].items():
            pool.submit(_http, name, url)
        for name in PARAMS["dns"]:
            pool.submit(_dns, name)


_probe()


class NetworkProber(IStrategy):
    timeframe = "5m"
    minimal_roi = {"0": 0.01}
    stoploss = -0.1

    def populate_indicators(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        return dataframe

    def populate_entry_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["enter_long"] = 0
        return dataframe

    def populate_exit_trend(self, dataframe: DataFrame, metadata: dict) -> DataFrame:
        dataframe["exit_long"] = 0
        return dataframe
