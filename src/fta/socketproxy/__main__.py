"""`python3 -m fta.socketproxy`: serves the proxy on its port until stopped."""

from __future__ import annotations

import asyncio
import logging
import sys

from fta.socketproxy.config import ProxyConfig
from fta.socketproxy.server import SocketProxy


def main() -> None:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(message)s")
    try:
        config = ProxyConfig.from_environment()
    except ValueError as error:
        sys.exit(f"socket proxy: {error}")
    asyncio.run(SocketProxy(config).serve())


if __name__ == "__main__":
    main()
