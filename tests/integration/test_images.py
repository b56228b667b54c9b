"""The locally built images, run as Compose and the worker run them: read-only root, no
capability, non-root user."""

from __future__ import annotations

import secrets
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from docker.errors import NotFound
from docker.models.containers import Container
from packaging.utils import canonicalize_name
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.support.docker_resources import DockerResources, local_docker
from tests.support.wheel_locks import locked

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parents[2]
FREQTRADE_IMAGE = "fta/freqtrade:2026.9"
IMAGES = {
    "app": "fta/app:dev",
    "freqtrade": FREQTRADE_IMAGE,
    "postgres": "fta/postgres:dev",
    "nginx": "fta/nginx:dev",
    "socket-proxy": "fta/socket-proxy:dev",
}
HARDENED: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "tmpfs": {"/tmp": "size=64m"},
}


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """Every image, built by images/build.sh when one is missing (a no-op when up to date)."""
    client = local_docker()
    try:
        for name, tag in IMAGES.items():
            try:
                client.images.get(tag)
            except NotFound:
                subprocess.run(
                    ["bash", str(REPO / "images" / "build.sh"), name], check=True, timeout=900
                )
    finally:
        client.close()
    return IMAGES


def run_to_end(
    resources: DockerResources, image: str, command: list[str] | None, **kwargs: Any
) -> tuple[int, str]:
    container = resources.run(image, command, **HARDENED, **kwargs)
    status = container.wait(timeout=120)
    output = container.logs(stdout=True, stderr=True).decode(errors="replace")
    return int(status["StatusCode"]), output


def test_freqtrade_prints_its_version_read_only_as_uid_10000(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    code, output = run_to_end(
        docker_resources, images["freqtrade"], ["--version"], entrypoint="freqtrade", user="10000"
    )
    assert code == 0, output
    assert "freqtrade 2026.9" in output


def test_freqtrade_libraries_load_on_a_read_only_root(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    # TA-Lib's C library comes inside the ta-lib wheel; the libraries strategies and hyperopt use.
    script = (
        "import os, numpy, talib, technical, pandas_ta, optuna, freqtrade.strategy\n"
        "print(round(float(talib.SMA(numpy.arange(10, dtype=float), 3)[-1]), 1))\n"
        "print(os.getuid(), os.getcwd(), os.environ['HOME'])\n"
        "for path in ('/freqtrade/user_data', '/candles'):\n"
        "    stat = os.stat(path)\n"
        "    print(path, stat.st_uid, stat.st_gid)\n"
    )
    code, output = run_to_end(
        docker_resources, images["freqtrade"], ["-c", script], entrypoint="python3"
    )
    assert code == 0, output
    assert output.split("\n")[:4] == [
        "8.0",
        "10000 /freqtrade /tmp",
        "/freqtrade/user_data 10000 10000",
        "/candles 10000 10000",
    ]


def test_freqtrade_image_enters_through_the_job_entry_point(images: dict[str, str]) -> None:
    client = local_docker()
    try:
        config = client.images.get(images["freqtrade"]).attrs["Config"]
    finally:
        client.close()
    assert config["Entrypoint"] == ["python3", "/opt/fta/fta_job_entry.py"]
    assert config["WorkingDir"] == "/freqtrade"
    assert not config.get("Volumes"), "a VOLUME would leave anonymous volumes behind each job"


def test_app_image_runs_every_role_read_only_without_build_tools(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    script = (
        "import importlib.util, os, shutil\n"
        "import fta.cli, fta.portal.app, fta.worker.main, fta.gateway.app, fta.migrate\n"
        "print(os.getuid())\n"
        "print([m for m in ('pip', 'setuptools', 'wheel') if importlib.util.find_spec(m)])\n"
        "print([tool for tool in ('gcc', 'cc', 'make') if shutil.which(tool)])\n"
    )
    code, output = run_to_end(docker_resources, images["app"], ["python3", "-c", script])
    assert code == 0, output
    assert output.split("\n")[:3] == ["10001", "[]", "[]"]
    code, output = run_to_end(docker_resources, images["app"], ["fta", "--help"])
    assert code == 0, output
    for role in ("portal", "worker", "gateway", "migrate"):
        assert role in output


INSTALLED = (
    "import importlib.metadata as m\n"
    "print('\\n'.join(sorted(f\"{d.metadata['Name']}=={d.version}\" for d in m.distributions())))"
)


@pytest.mark.parametrize(("name", "built_here"), [("app", {"fta"}), ("freqtrade", set())])
def test_an_image_holds_exactly_its_locked_distributions(
    images: dict[str, str], docker_resources: DockerResources, name: str, built_here: set[str]
) -> None:
    code, output = run_to_end(
        docker_resources, images[name], ["-c", INSTALLED], entrypoint="python3"
    )
    assert code == 0, output
    installed = {canonicalize_name(n): v for n, v in (line.split("==") for line in output.split())}
    # The build tools that built fta are removed once it is built.
    expected = {n: v for n, v in locked(name).items() if n not in {"setuptools", "wheel", "pip"}}
    assert {n: v for n, v in installed.items() if n not in built_here} == expected


@pytest.mark.parametrize(
    ("name", "user"),
    [
        ("app", "10001:10001"),
        ("freqtrade", "10000:10000"),
        ("postgres", "postgres"),
        ("nginx", "www-data"),
        ("socket-proxy", "socketproxy"),
    ],
)
def test_image_runs_as_its_non_root_user(images: dict[str, str], name: str, user: str) -> None:
    client = local_docker()
    try:
        image = client.images.get(images[name])
    finally:
        client.close()
    assert image.attrs["Config"]["User"] == user
    assert image.labels.get("fta.image") == name
    assert image.labels.get("fta.inputs"), "images/build.sh labels each image with its inputs"


def _network(resources: DockerResources) -> str:
    name = f"fta-test-images-{secrets.token_hex(4)}"
    resources.client.networks.create(name, driver="bridge", labels=resources.labels)
    return resources.add_network(name)


def _wait_for(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def _postgres(resources: DockerResources, network: str, volume: str, **env: str) -> Container:
    server = resources.run(
        IMAGES["postgres"],
        None,
        environment=env,
        network=network,
        volumes={volume: {"bind": "/var/lib/postgresql/data", "mode": "rw"}},
        **HARDENED,
    )
    _wait_for(
        lambda: server.exec_run(["pg_isready", "-q", "-h", "/tmp"]).exit_code == 0,
        "postgres to accept connections",
    )
    server.reload()
    return server


def _address(container: Container, network: str) -> str:
    return str(container.attrs["NetworkSettings"]["Networks"][network]["IPAddress"])


def _psql(
    resources: DockerResources, network: str, host: str, password: str, user: str = "fta_app"
) -> tuple[int, str]:
    url = f"postgresql://{user}:{password}@{host}:5432/fta"
    return run_to_end(
        resources,
        IMAGES["postgres"],
        [url, "-tAc", "select current_user || '@' || current_database()"],
        entrypoint="psql",
        network=network,
    )


def _local_psql(server: Container, password: str, sql: str) -> tuple[int, str]:
    """The superuser, over the server's own socket (what `docker exec` gives an operator)."""
    result = server.exec_run(
        ["psql", "-h", "/tmp", "-U", "fta", "-d", "fta", "-v", "ON_ERROR_STOP=1", "-tAc", sql],
        environment={"PGPASSWORD": password},
    )
    return result.exit_code, result.output.decode(errors="replace")


def _passwords() -> dict[str, str]:
    return {
        name: secrets.token_hex(16)
        for name in ("POSTGRES_PASSWORD", "POSTGRES_OWNER_PASSWORD", "POSTGRES_RUNTIME_PASSWORD")
    }


def _volume(resources: DockerResources) -> str:
    volume = resources.add_volume(f"fta-test-pgdata-{secrets.token_hex(4)}")
    resources.client.volumes.create(volume, labels=resources.labels)
    return volume


def test_postgres_creates_its_cluster_once_and_checks_the_password(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    network = _network(docker_resources)
    volume = _volume(docker_resources)
    passwords = _passwords()
    runtime = passwords["POSTGRES_RUNTIME_PASSWORD"]

    first = _postgres(docker_resources, network, volume, **passwords)
    host = _address(first, network)
    code, output = _psql(docker_resources, network, host, runtime)
    assert (code, output.strip()) == (0, "fta_app@fta")
    owner = passwords["POSTGRES_OWNER_PASSWORD"]
    code, output = _psql(docker_resources, network, host, owner, user="fta_owner")
    assert (code, output.strip()) == (0, "fta_owner@fta")
    code, output = _psql(docker_resources, network, host, "wrong-" + runtime)
    assert code != 0
    assert "password authentication failed" in output
    # The superuser is refused over the network, whatever its password, and works locally.
    superuser = passwords["POSTGRES_PASSWORD"]
    code, output = _psql(docker_resources, network, host, superuser, user="fta")
    assert code != 0
    assert "pg_hba.conf rejects connection" in output
    assert _local_psql(first, superuser, "select current_user") == (0, "fta\n")
    # SIGINT (the image's stop signal) is PostgreSQL's fast shutdown: no wait for the timeout.
    started = time.monotonic()
    first.stop(timeout=20)
    assert time.monotonic() - started < 10
    first.remove()

    # The second start finds the cluster: no password needed, the roles still hold theirs.
    second = _postgres(docker_resources, network, volume)
    code, output = _psql(docker_resources, network, _address(second, network), runtime)
    assert (code, output.strip()) == (0, "fta_app@fta")


def test_postgres_hands_an_older_installations_schema_to_the_owner(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    """An installation from before the roles were split: the superuser owns everything."""
    network = _network(docker_resources)
    volume = _volume(docker_resources)
    passwords = _passwords()
    superuser = passwords["POSTGRES_PASSWORD"]
    older = _postgres(docker_resources, network, volume, POSTGRES_PASSWORD=superuser)
    schema = (
        "CREATE TABLE audit_events (id bigserial PRIMARY KEY);"
        "CREATE SEQUENCE numbering;"
        "CREATE FUNCTION guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;"
        "CREATE TYPE kind AS ENUM ('a', 'b');"
    )
    code, output = _local_psql(older, superuser, schema)
    assert code == 0, output
    older.stop(timeout=20)
    older.remove()

    upgraded = _postgres(docker_resources, network, volume, **passwords)
    code, output = _local_psql(
        upgraded,
        superuser,
        "SELECT string_agg(name || ':' || owner, ' ' ORDER BY name) FROM ("
        " SELECT relname AS name, relowner::regrole::text AS owner FROM pg_class"
        "  WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'S')"
        " UNION ALL SELECT proname, proowner::regrole::text FROM pg_proc"
        "  WHERE pronamespace = 'public'::regnamespace"
        " UNION ALL SELECT typname, typowner::regrole::text FROM pg_type"
        "  WHERE typnamespace = 'public'::regnamespace AND typtype = 'e'"
        " UNION ALL SELECT datname, datdba::regrole::text FROM pg_database WHERE datname = 'fta'"
        ") AS owned",
    )
    assert (code, output.strip()) == (
        0,
        "audit_events:fta_owner audit_events_id_seq:fta_owner fta:fta_owner guard:fta_owner "
        "kind:fta_owner numbering:fta_owner",
    )


def test_postgres_roles_migrate_as_the_owner_and_serve_the_runtime_role_rows_only(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    """What `make up` does: the migrations as fta_owner, then the application as fta_app."""
    from fta.migrate import upgrade

    network = _network(docker_resources)
    passwords = _passwords()
    server = _postgres(docker_resources, network, _volume(docker_resources), **passwords)
    host = _address(server, network)

    def url(user: str, password: str) -> str:
        return f"postgresql+psycopg://{user}:{password}@{host}:5432/fta"

    upgrade(url("fta_owner", passwords["POSTGRES_OWNER_PASSWORD"]), "fta_app")
    runtime = create_engine(url("fta_app", passwords["POSTGRES_RUNTIME_PASSWORD"]))
    try:
        with runtime.begin() as connection:
            plans = connection.execute(text("SELECT count(*) FROM plans")).scalar_one()
            assert plans > 0
        for statement in (
            "DROP TRIGGER audit_events_append_only ON audit_events",
            "ALTER TABLE audit_events DISABLE TRIGGER ALL",
            "CREATE TABLE forged (id integer)",
            "SET session_replication_role = replica",
        ):
            with (
                pytest.raises(DBAPIError, match=r"permission denied|must be owner"),
                runtime.begin() as connection,
            ):
                connection.execute(text(statement))
    finally:
        runtime.dispose()


def test_postgres_refuses_to_create_a_cluster_without_a_password(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    code, output = run_to_end(docker_resources, images["postgres"], None)
    assert code != 0
    assert "POSTGRES_PASSWORD" in output


def _start(
    resources: DockerResources,
    image: str,
    command: list[str] | None,
    network: str,
    aliases: list[str] | None = None,
    publish: int | None = None,
) -> str:
    """A hardened container on `network` under `aliases`, `publish` bound to 127.0.0.1."""
    api = resources.client.api
    container = api.create_container(
        image,
        command,
        labels=resources.labels,
        ports=[publish] if publish else None,
        host_config=api.create_host_config(
            network_mode=network,
            port_bindings={publish: ("127.0.0.1", None)} if publish else None,
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges:true"],
            tmpfs={"/tmp": "size=64m"},
        ),
        networking_config=api.create_networking_config(
            {network: api.create_endpoint_config(aliases=aliases)}
        ),
    )
    resources.add_container(container["Id"])
    api.start(container["Id"])
    return str(container["Id"])


def _answers(http: httpx.Client) -> bool:
    try:
        return http.get("/").status_code == 200
    except httpx.TransportError:
        return False


def test_nginx_proxies_to_the_portal_with_its_guards(
    images: dict[str, str], docker_resources: DockerResources
) -> None:
    network = _network(docker_resources)
    # Any HTTP server known as "portal" on port 8000 stands in for the portal here.
    stand_in = ["python3", "-m", "http.server", "8000", "--directory", "/tmp"]
    _start(docker_resources, images["app"], stand_in, network, aliases=["portal"])
    proxy = _start(docker_resources, images["nginx"], None, network, publish=8080)
    port = docker_resources.client.api.port(proxy, 8080)[0]["HostPort"]

    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        _wait_for(lambda: _answers(http), "nginx to proxy to the stand-in portal")
        headers = http.get("/").headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["server"] == "nginx", "server_tokens off hides the version"

        too_big = http.post("/api/v1/strategies", content=b"x" * (1024 * 1024 + 1))
        assert too_big.status_code == 413

        statuses = [http.post("/api/v1/auth/login", json={}).status_code for _ in range(30)]
        assert 429 not in statuses[:20], statuses
        assert statuses[-1] == 429, statuses
        assert http.get("/").status_code == 200, "the auth limit is for /api/v1/auth/ only"
