"""Known secret formats pushed through every way a process or a job writes text: fta's
loggers, uvicorn's loggers as the fta processes configure them, logged and uncaught
exceptions, warnings, and a job's captured output and error line. No secret may come out.

The secrets are generated for each run (nothing secret-shaped is written in this file).
"""

from __future__ import annotations

import base64
import importlib
import logging
import pkgutil
import secrets
import string
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import uvicorn

import fta
from fta import cli
from fta.logs import configure_logging
from fta.redaction import MASK
from fta.worker.log_capture import LogCapture

ALPHANUMERIC = string.ascii_letters + string.digits
# A leak of this many consecutive characters of a secret counts as a leak of the secret.
FRAGMENT = 16
# Spelt in two parts so that the repository's secret scan does not see a key header here.
PEM_KIND = "PRIVATE" + " KEY"


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _random_key(alphabet: str, length: int) -> str:
    """A key with both cases and a digit, as issued keys have (bar a rare few)."""
    while True:
        key = _random(alphabet, length)
        has_digit = any(char.isdigit() for char in key)
        if has_digit and not key.isupper() and not key.islower():
            return key


def _pem_private_key(label: str, size: int) -> tuple[str, str]:
    """A PEM block shaped like a private key of `size` bytes (random body), and its body."""
    body = base64.b64encode(secrets.token_bytes(size)).decode()
    lines = textwrap.wrap(body, 64)
    pem = "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"])
    return pem, body


@dataclass(frozen=True)
class Secret:
    name: str
    value: str  # what must never be written out, not even in part
    text: str  # how it shows up in a message


def secret_shapes() -> list[Secret]:
    paypal_id = "A" + _random_key(ALPHANUMERIC + "_-", 79)
    paypal_secret = "E" + _random_key(ALPHANUMERIC + "_-", 79)
    paypal_basic = base64.b64encode(f"{paypal_id}:{paypal_secret}".encode()).decode()
    token = jwt.encode({"sub": secrets.token_hex(8)}, secrets.token_bytes(32), algorithm="HS256")
    binance_key, binance_secret = _random_key(ALPHANUMERIC, 64), _random_key(ALPHANUMERIC, 64)
    kraken_secret = base64.b64encode(secrets.token_bytes(64)).decode()
    okx_passphrase = secrets.token_urlsafe(12)
    db_password = secrets.token_urlsafe(18)
    bearer = secrets.token_urlsafe(32)
    aws_key_id = "AKIA" + _random(string.ascii_uppercase + "234567", 16)
    aws_secret = _random_key(ALPHANUMERIC + "/+", 40)
    rsa_pem, rsa_body = _pem_private_key(f"RSA {PEM_KIND}", 1190)
    # An EC key's last body line holds 36 characters: too short for any pattern alone.
    ec_pem, ec_body = _pem_private_key(f"EC {PEM_KIND}", 121)
    return [
        Secret("paypal client id", paypal_id, f"PayPal client {paypal_id} refused"),
        Secret("paypal client secret", paypal_secret, f"oauth2 with {paypal_secret} failed"),
        Secret("paypal basic auth", paypal_basic, f"Authorization: Basic {paypal_basic}"),
        Secret("jwt", token, f"session token {token} expired"),
        Secret("binance api key", binance_key, f"binance: invalid API-key {binance_key}"),
        Secret("binance secret", binance_secret, f"ccxt config {{'secret': '{binance_secret}'}}"),
        Secret("binance secret bare", binance_secret, f"signing with {binance_secret}"),
        Secret("kraken secret", kraken_secret, f"kraken private key {kraken_secret} rejected"),
        Secret("exchange passphrase", okx_passphrase, f"{{'password': '{okx_passphrase}'}}"),
        Secret("database url", db_password, f"postgresql+psycopg://fta:{db_password}@postgres/fta"),
        Secret("bearer token", bearer, f"Authorization: Bearer {bearer}"),
        Secret("aws key id", aws_key_id, f"using AWS key {aws_key_id}"),
        Secret("aws secret key", aws_secret, f"aws secret {aws_secret} in use"),
        Secret("aws secret bare", aws_secret, f"credentials ({aws_secret}) rejected"),
        Secret("rsa private key", rsa_body, f"loaded key:\n{rsa_pem}\nfrom the vault"),
        Secret("ec private key", ec_body, f"{ec_pem}\n"),
    ]


SECRETS = secret_shapes()


def leaks(output: str, secret: Secret) -> list[str]:
    """The parts of `secret` that `output` shows."""
    value = secret.value.replace("\n", "")
    size = min(FRAGMENT, len(value))
    return sorted(
        {value[i : i + size] for i in range(len(value) - size + 1)}
        & {output[i : i + size] for i in range(len(output) - size + 1)}
    )


def assert_no_secret(output: str, shapes: list[Secret] = SECRETS) -> None:
    found = {secret.name: parts[:3] for secret in shapes if (parts := leaks(output, secret))}
    assert not found, f"secrets leaked: {found}\n--- output ---\n{output[-2000:]}"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """configure_logging() rewires the root logger and the interpreter's hooks: give pytest
    its own back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    hooks = (sys.excepthook, threading.excepthook, warnings.showwarning)
    uvicorn_loggers = {
        name: (logger.handlers[:], logger.propagate, logger.level)
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        for logger in [logging.getLogger(name)]
    }
    yield
    root.handlers[:], root.level = handlers, level
    sys.excepthook, threading.excepthook, warnings.showwarning = hooks
    for name, (saved, propagate, saved_level) in uvicorn_loggers.items():
        logger = logging.getLogger(name)
        logger.handlers[:], logger.propagate, logger.level = saved, propagate, saved_level


def _fta_loggers() -> list[str]:
    """Imports every fta module (bar the migration scripts) and names the loggers they made."""
    for module in pkgutil.walk_packages(fta.__path__, "fta."):
        if not module.name.startswith("fta.migrations"):
            importlib.import_module(module.name)
    names = [name for name in logging.Logger.manager.loggerDict if name.split(".")[0] == "fta"]
    assert {"fta.worker.main", "fta.worker.handlers", "fta.worker.reconciler"} <= set(names)
    return sorted({"fta", *names})


def test_every_secret_shape_is_a_real_leak_when_unredacted() -> None:
    # Guards the checks below: each shape must be found in its own raw text.
    for secret in SECRETS:
        assert leaks(secret.text, secret), secret.name


@pytest.mark.usefixtures("restored_logging")
def test_every_fta_logger_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(logging.DEBUG)
    for name in _fta_loggers():
        log = logging.getLogger(name)
        for secret in SECRETS:
            log.info("%s", secret.text)
            log.warning(secret.text)
            log.error("failed: %r", {"detail": secret.text})
    err = capsys.readouterr().err
    assert err.count(MASK) >= len(SECRETS)
    assert_no_secret(err)


@pytest.mark.usefixtures("restored_logging")
def test_logged_tracebacks_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging()
    log = logging.getLogger("fta.worker.handlers")
    for secret in SECRETS:
        try:
            try:
                raise ConnectionError(secret.text)
            except ConnectionError as cause:
                raise RuntimeError(f"job setup failed: {secret.text}") from cause
        except RuntimeError:
            log.exception("job %s crashed", "j-1")
    err = capsys.readouterr().err
    assert "Traceback" in err and "ConnectionError" in err
    assert_no_secret(err)


def _access_line(logger: logging.Logger, path: str) -> None:
    # The shape of uvicorn's own access records (client, method, path, version, status).
    logger.info('%s - "%s %s HTTP/%s" %d', "10.210.0.7:40000", "GET", path, "1.1", 200)


@pytest.mark.usefixtures("restored_logging", "app_settings")
@pytest.mark.parametrize("command", ["portal", "gateway"])
def test_uvicorn_loggers_of_fta_processes_redact(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs `fta portal|gateway` up to uvicorn, then logs through uvicorn's loggers as that
    process has configured them."""
    launched: dict[str, Any] = {}

    def configure_only(app: Any, **options: Any) -> None:
        launched["config"] = uvicorn.Config(app, **options)

    async def serve_nothing(server: uvicorn.Server, sockets: Any = None) -> None:
        # The gateway serves its listeners with uvicorn.Server in one loop.
        launched["config"] = server.config

    monkeypatch.setenv("FTA_GATEWAY_PORT", "8090")
    monkeypatch.setattr(uvicorn, "run", configure_only)
    monkeypatch.setattr(uvicorn.Server, "serve", serve_nothing)
    assert cli.main([command]) == 0
    assert "config" in launched
    for secret in SECRETS:
        logging.getLogger("uvicorn.error").info(secret.text)
        try:
            raise ValueError(secret.text)
        except ValueError:
            logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        _access_line(logging.getLogger("uvicorn.access"), f"/x?token={secret.value}")
        logging.getLogger("uvicorn").warning(secret.text)
    err = capsys.readouterr().err
    assert "Exception in ASGI application" in err
    assert_no_secret(err)


UNCAUGHT = """
import sys, threading, warnings
from fta.logs import configure_logging

configure_logging()
message = sys.stdin.read()


def fail():
    raise RuntimeError(message)


warnings.warn(message, stacklevel=1)
thread = threading.Thread(target=fail)
thread.start()
thread.join()
fail()
"""


def test_warnings_and_uncaught_exceptions_of_a_process_are_redacted() -> None:
    # A process that dies on a misconfigured URL prints its traceback without any logger.
    text = "\n".join(secret.text for secret in SECRETS)
    result = subprocess.run(
        [sys.executable, "-c", UNCAUGHT],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.count("RuntimeError") >= 2 and "Warning" in result.stderr
    assert_no_secret(result.stdout + result.stderr)


def _capture() -> LogCapture:
    return LogCapture(max_line=4096, max_total=1024 * 1024)


def test_job_output_and_error_line_are_redacted() -> None:
    capture = _capture()
    for secret in SECRETS:
        for line in secret.text.splitlines():
            capture.feed(line + "\n")
    api_key = next(secret for secret in SECRETS if secret.name == "binance api key")
    capture.feed(f"ERROR - Impossible to load Strategy: {api_key.text}\n")
    stored = capture.take_pending()
    assert "from the vault\n" in stored, "masking must stop at the end of a key"
    error = capture.last_error_line()
    assert error is not None and error.startswith("ERROR - Impossible")
    assert_no_secret(stored)
    assert_no_secret("".join(capture.tail))
    # The worker's job `error` field is built from this line.
    assert_no_secret(f"freqtrade exited with code 1: {error}")


@pytest.mark.parametrize(
    "secret", [s for s in SECRETS if "\n" not in s.text], ids=lambda secret: secret.name
)
def test_a_secret_cut_by_the_line_limit_is_redacted(secret: Secret) -> None:
    # A hostile job chooses where its lines are cut: no cut may leave part of a secret behind.
    for cut in range(8, len(secret.text), 5):
        capture = LogCapture(max_line=cut, max_total=1024 * 1024)
        capture.feed(secret.text + "\n")
        assert_no_secret(capture.take_pending(), [secret])


def test_the_brief_url_shape_keeps_host_and_user() -> None:
    capture = _capture()
    capture.feed("connecting to postgresql://u:p@h/db\n")
    assert capture.take_pending() == f"connecting to postgresql://u:{MASK}@h/db\n"


@pytest.mark.parametrize(
    "line",
    [
        "Using resolved strategy RsiQuick2 from '/freqtrade/user_data/strategies/RsiQuick2.py'",
        '  File "/opt/freqtrade/lib/python3.11/site-packages/freqtrade/optimize/backtesting.py"',
        "'public': 'http://market-data:8090/binance/api/v3', 'sapi': 'http://market-data:8090'",
        "Loading data from 2024-01-01 00:00:00 up to 2024-01-15 00:00:00 (14 days).",
        "/home/ftuser/freqtrade/strategies/SampleStrategyWithALongName",
        "BTC/USDT:USDT, ETH/USDT:USDT, SOL/USDT:USDT, XRP/USDT:USDT, DOGE/USDT:USDT",
    ],
)
def test_ordinary_job_output_is_kept(line: str) -> None:
    capture = _capture()
    capture.feed(line + "\n")
    assert capture.take_pending() == line + "\n"


def test_hostile_output_cannot_make_redaction_slow() -> None:
    # Each line is tried by every pattern: a pattern that backtracks would let one job's
    # output hold the worker's CPU (and its other jobs' log threads) for seconds per line.
    shapes = [
        "a-" * 2048,
        "a/" * 2048,
        "=a" * 2048,
        "aB1+" * 1024,
        "password=" * 455,
        "://a:" * 800,
    ]
    capture = LogCapture(max_line=4096, max_total=1024)
    started = time.perf_counter()
    for _ in range(100):
        for line in shapes:
            capture.feed(line + "\n")
    # About 0.5 s here; the backtracking pattern this replaced took over 10 s.
    assert time.perf_counter() - started < 5
