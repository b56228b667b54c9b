"""A bot's freqtrade configuration, its API server included, passes the schema of the real
freqtrade 2026.9 (the host venv of scripts/ft-host-venv.sh) and reads back as freqtrade's
API server reads it."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from fta.freqtrade.bot_api import derive_secrets
from fta.freqtrade.config import build_bot_config
from fta.freqtrade.options import parse_bot_config
from tests.support.host_processes import freqtrade_host_venv

BOT_ID = uuid.UUID("00000000-0000-4000-8000-0000000000b0")
CHECK = """
import json, sys
from freqtrade.configuration.config_validation import validate_config_schema
config = json.load(open(sys.argv[1]))
validate_config_schema(config)
api = config["api_server"]
print(json.dumps({key: api[key] for key in ("enabled", "listen_ip_address", "listen_port")}))
"""


def test_the_bot_config_with_its_api_server_passes_freqtrades_schema(tmp_path: Path) -> None:
    venv = freqtrade_host_venv()
    config = build_bot_config(
        parse_bot_config({"pairs": ["BTC/USDT"], "timeframe": "1m"}),
        bot_id=BOT_ID,
        strategy_name="Mine",
        gateway_url="http://market-data:8090",
        api=derive_secrets(b"k" * 32, BOT_ID),
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    checked = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert json.loads(checked.stdout.splitlines()[-1]) == {
        "enabled": True,
        "listen_ip_address": "0.0.0.0",  # noqa: S104 - what the bot is configured with
        "listen_port": 8080,
    }
    # A broken API section is refused: the check above can fail.
    config["api_server"]["jwt_secret_key"] = "short"  # pragma: allowlist secret
    path.write_text(json.dumps(config))
    refused = subprocess.run(
        [str(venv / "bin" / "python"), "-c", CHECK, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0 and "jwt_secret_key" in refused.stderr
