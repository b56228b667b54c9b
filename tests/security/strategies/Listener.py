"""A victim tenant's job that serves a marker on a TCP port, on import, for the network
probes of another tenant to look for. It checks that it answers on its own address first,
then keeps serving until PARAMS' deadline or until the test cancels it."""

import json
import socket
import threading
import time

from freqtrade.strategy import IStrategy
from pandas import DataFrame

PARAMS: dict = {}


def _serve(server: socket.socket, marker: bytes) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2.0)
            try:
                conn.recv(4096)
                conn.sendall(marker + b"\n")
            except OSError:
                pass


def _listen() -> None:
    server = socket.create_server(("0.0.0.0", PARAMS["port"]))  # noqa: S104
    threading.Thread(target=_serve, args=(server, PARAMS["marker"].encode()), daemon=True).start()
    address = socket.gethostbyname(socket.gethostname())
    with socket.create_connection((address, PARAMS["port"]), timeout=5) as conn:
        conn.sendall(b"self-check\n")
        answer = conn.recv(200).decode().strip()
    report = {"probe": "listener", "address": address, "port": PARAMS["port"], "answer": answer}
    print("PROBE " + json.dumps(report), flush=True)
    time.sleep(PARAMS["serve_seconds"])
    server.close()


_listen()


class Listener(IStrategy):
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
