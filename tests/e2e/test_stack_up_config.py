"""The stack's configuration: the generated .env and the Compose file, without starting it."""

from __future__ import annotations

import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML, required by the dev tools (detect-secrets, schemathesis)

from tests.support.stack import ONE_SHOTS, REPO, clean_environment

SERVICES = {"nginx", "portal", "worker", "socket-proxy", "market-data", "postgres"}
DATABASE_SECRETS = (
    "POSTGRES_PASSWORD",
    "FTA_DATABASE_OWNER_PASSWORD",
    "FTA_DATABASE_RUNTIME_PASSWORD",
)


def compose_command() -> list[str]:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


def parse_env(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key] = value
    return pairs


def generate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "scripts" / "gen-env.sh"), str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )


def rendered_services(env_file: Path) -> dict[str, Any]:
    """The services of the compose file as compose renders them with `env_file`."""
    rendered = subprocess.run(
        [
            *compose_command(),
            "--env-file",
            str(env_file),
            "-f",
            str(REPO / "docker-compose.yml"),
            "config",
        ],
        env=clean_environment(DOCKER_GID="999"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert rendered.returncode == 0, rendered.stderr
    services: dict[str, Any] = yaml.safe_load(rendered.stdout)["services"]
    return services


def test_env_example_holds_only_placeholders_each_explained() -> None:
    lines = (REPO / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Z][A-Z0-9_]*=\S*", line), line
            assert lines[index - 1].startswith("# "), f"{line} has no comment line above it"
    example = parse_env(REPO / ".env.example")
    for secret in ("FTA_SECRET_KEY", "FTA_AUDIT_KEY", *DATABASE_SECRETS):
        assert "changeme" in example[secret]


def test_gen_env_writes_private_random_secrets_once(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    generate(env_file)
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    text = env_file.read_text()
    values = parse_env(env_file)
    assert not [key for key, value in values.items() if "changeme" in value]
    assert values.keys() == parse_env(REPO / ".env.example").keys()
    secrets = [values[key] for key in ("FTA_SECRET_KEY", "FTA_AUDIT_KEY", *DATABASE_SECRETS)]
    assert all(re.fullmatch(r"[0-9a-f]{64}", secret) for secret in secrets)
    assert len(set(secrets)) == len(secrets)

    kept = generate(env_file)
    assert env_file.read_text() == text, "an existing .env is never overwritten"
    assert "kept" in kept.stderr
    other = tmp_path / "other.env"
    generate(other)
    assert parse_env(other)["FTA_SECRET_KEY"] != values["FTA_SECRET_KEY"]


def test_gen_env_adds_new_settings_to_an_older_env_and_keeps_the_rest(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    generate(env_file)
    values = parse_env(env_file)
    older = {k: v for k, v in values.items() if k not in ("FTA_AUDIT_KEY", *DATABASE_SECRETS[1:])}
    env_file.write_text("".join(f"{k}={v}\n" for k, v in older.items()))
    added = generate(env_file)
    assert "added FTA_AUDIT_KEY" in added.stderr
    upgraded = parse_env(env_file)
    assert {k: upgraded[k] for k in older} == older
    assert upgraded.keys() == values.keys()
    for key in ("FTA_AUDIT_KEY", *DATABASE_SECRETS[1:]):
        assert re.fullmatch(r"[0-9a-f]{64}", upgraded[key]) and upgraded[key] != values[key]


def test_generated_settings_pass_the_portals_own_checks(tmp_path: Path) -> None:
    from fta.settings import Mode, Settings

    env_file = tmp_path / ".env"
    generate(env_file)
    values = parse_env(env_file)
    runtime_password = values["FTA_DATABASE_RUNTIME_PASSWORD"]
    settings = Settings(
        mode=Mode(values["FTA_MODE"]),
        database_url=f"postgresql+psycopg://fta_app:{runtime_password}@postgres:5432/fta",
        secret_key=values["FTA_SECRET_KEY"],
        audit_key=values["FTA_AUDIT_KEY"],
    )
    assert settings.mode is Mode.PRODUCTION
    assert settings.docker_host == values["FTA_DOCKER_HOST"]
    assert settings.job_image == values["FTA_JOB_IMAGE"]
    assert settings.gateway_container == values["FTA_GATEWAY_CONTAINER"]


@pytest.mark.skipif(
    not (shutil.which("docker-compose") or shutil.which("docker")), reason="no compose"
)
def test_compose_file_is_valid_with_a_generated_env(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    generate(env_file)
    base = [*compose_command(), "--env-file", str(env_file), "-f", str(REPO / "docker-compose.yml")]
    env = clean_environment(DOCKER_GID="999")
    checked = subprocess.run(
        [*base, "config", "-q"], env=env, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stderr
    services = subprocess.run(
        [*base, "config", "--services"], env=env, capture_output=True, text=True, timeout=60
    )
    assert set(services.stdout.split()) == SERVICES | ONE_SHOTS

    # Without the socket's group Compose refuses, rather than start a proxy that cannot work.
    refused = subprocess.run(
        [*base, "config", "-q"], env=clean_environment(), capture_output=True, text=True
    )
    assert refused.returncode != 0
    assert "DOCKER_GID" in refused.stderr


@pytest.mark.skipif(
    not (shutil.which("docker-compose") or shutil.which("docker")), reason="no compose"
)
def test_the_market_data_settings_reach_the_gateway_portal_and_worker(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    generate(env_file)
    text = env_file.read_text()
    assert "FTA_MARKET_DATA_UPSTREAM=https://api.binance.com\n" in text
    upstream = "http://exchange.invalid:9000"
    text = text.replace("FTA_MARKET_DATA_MODE=replay", "FTA_MARKET_DATA_MODE=proxy")
    env_file.write_text(
        text.replace(
            "FTA_MARKET_DATA_UPSTREAM=https://api.binance.com",
            f"FTA_MARKET_DATA_UPSTREAM={upstream}",
        )
    )
    services = rendered_services(env_file)
    gateway = services["market-data"]["environment"]
    assert gateway["FTA_MARKET_DATA_UPSTREAM"] == upstream
    assert gateway["FTA_MARKET_DATA_MODE"] == "proxy"
    # The portal checks pairs against the proxy's market list, which the worker refreshes.
    for service in ("portal", "worker"):
        assert services[service]["environment"]["FTA_MARKET_DATA_MODE"] == "proxy", service


@pytest.mark.skipif(
    not (shutil.which("docker-compose") or shutil.which("docker")), reason="no compose"
)
def test_the_recorded_store_is_written_by_the_worker_and_only_read_by_the_gateway(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    generate(env_file)
    services = rendered_services(env_file)

    def mount(service: str, target: str) -> tuple[str, bool]:
        """(source, read-only) of a mount, rendered long (compose v2) or short (1.29)."""
        for entry in services[service]["volumes"]:
            if isinstance(entry, str):
                source, path, *mode = entry.split(":")
                if path == target:
                    return source, mode == ["ro"]
            elif entry["target"] == target:
                return entry["source"], bool(entry.get("read_only"))
        raise AssertionError(f"{service} does not mount {target}")

    store = "/var/lib/fta/market-data"
    assert mount("worker", store) == ("fta-market-data", False)
    assert mount("market-data", store) == ("fta-market-data", True)
    assert mount("worker", "/import") == ("/var/lib/fta/market-data-import", True)
