"""`make up` for real: the whole stack boots from this repository, serves the portal on
127.0.0.1:8080 only, runs hardened, and `make down` keeps the data volume.

Skipped when a stack is already there (an operator's or a developer's): it must not be
touched. Whatever this test creates (.env, the data volume) it removes again."""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import subprocess
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_stack_up_config import SERVICES, parse_env
from tests.support.identities import SELLER_ENV
from tests.support.s3_standin import s3_standin
from tests.support.stack import (
    CONTROL_NETWORK,
    DATA_VOLUME,
    PORTAL,
    REPO,
    Stack,
    clean_environment,
    exists,
    host_listeners,
    operator_key,
    running_stack,
)

pytestmark = pytest.mark.docker

DOCKER_API_NETWORK = "fta-docker-api"
# The README's client (e-mail, password, its job and bot), for the backup's test.
README_ACCOUNT: dict[str, Any] = {}
# What a restore must give back, row for row.
COUNTED_TABLES = (
    "tenants",
    "users",
    "strategies",
    "strategy_versions",
    "jobs",
    "job_results",
    "job_archives",
    "bots",
    "invoices",
    "usage_events",
    "audit_events",
)


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    # Invoices need the seller's legal identity: a fictional one.
    with running_stack(**SELLER_ENV) as stack:
        yield stack


def _wait_until_healthy(stack: Stack, seconds: float = 120) -> dict[str, str]:
    deadline = time.monotonic() + seconds
    while True:
        health = {
            name: c.attrs["State"].get("Health", {}).get("Status", "none")
            for name, c in stack.containers().items()
        }
        if set(health.values()) == {"healthy"} or time.monotonic() > deadline:
            return health
        time.sleep(2)


def test_portal_answers_through_nginx_with_security_headers(stack: Stack) -> None:
    response = httpx.get(f"{PORTAL}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.headers["x-frame-options"] == "DENY"
    assert "content-security-policy" in response.headers
    assert response.headers["server"] == "nginx"


def test_every_service_runs_and_is_healthy(stack: Stack) -> None:
    health = _wait_until_healthy(stack)
    assert set(health) == SERVICES
    assert health == dict.fromkeys(SERVICES, "healthy")


def test_every_container_is_hardened(stack: Stack) -> None:
    for name, container in stack.containers().items():
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"], name
        assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], name
        assert "no-new-privileges:true" in host["SecurityOpt"], name
        assert not host["Privileged"], name
        assert host["Memory"] > 0 and host["NanoCpus"] > 0 and host["PidsLimit"] > 0, name
        assert host["RestartPolicy"]["Name"] == "unless-stopped", name
        assert host["LogConfig"]["Config"].get("max-size"), name
        user = container.attrs["Config"]["User"]
        assert user and user.split(":")[0] not in ("0", "root"), name


def test_migrations_ran_as_the_owner_and_the_services_connect_as_the_runtime_role(
    stack: Stack,
) -> None:
    containers = stack.containers(one_shots=True)
    migrate = containers["migrate"]
    assert migrate.attrs["State"]["Status"] == "exited"
    assert migrate.attrs["State"]["ExitCode"] == 0
    host = migrate.attrs["HostConfig"]
    assert host["ReadonlyRootfs"] and host["CapDrop"] == ["ALL"]
    assert "no-new-privileges:true" in host["SecurityOpt"]

    def environment(name: str) -> dict[str, str]:
        pairs = containers[name].attrs["Config"]["Env"]
        return dict(pair.split("=", 1) for pair in pairs)

    assert environment("migrate")["FTA_DATABASE_URL"].startswith("postgresql+psycopg://fta_owner:")
    owner_password = parse_env(REPO / ".env")["FTA_DATABASE_OWNER_PASSWORD"]
    for name in ("portal", "worker"):
        assert environment(name)["FTA_DATABASE_URL"].startswith("postgresql+psycopg://fta_app:")
    for name in set(containers) - {"migrate", "postgres"}:
        assert owner_password not in str(environment(name)), name


def test_only_nginx_is_published_and_only_on_loopback(stack: Stack) -> None:
    for name, container in stack.containers().items():
        bindings = container.attrs["HostConfig"]["PortBindings"] or {}
        if name == "nginx":
            assert bindings == {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
        else:
            assert not bindings, name


def test_nothing_but_nginx_listens_on_the_host_and_only_on_loopback(stack: Stack) -> None:
    started = host_listeners() - stack.listeners_before
    # Docker's userland proxy listens for nginx's published port; where it is turned off
    # (deploy/install.sh does), the kernel's NAT rule alone forwards it and nothing listens.
    assert started <= {"tcp 127.0.0.1:8080"}, started


def test_only_the_socket_proxy_sees_the_docker_socket(stack: Stack) -> None:
    for name, container in stack.containers().items():
        sockets = [m for m in container.attrs["Mounts"] if "docker.sock" in m["Source"]]
        if name == "socket-proxy":
            assert [m["RW"] for m in sockets] == [False]
        else:
            assert not sockets, name


def test_the_worker_holds_only_the_disk_helpers_socket_and_read_only_cgroups_and_imports(
    stack: Stack,
) -> None:
    worker = stack.containers()["worker"]
    binds = {
        (m["Source"], m["Destination"], m["RW"])
        for m in worker.attrs["Mounts"]
        if m["Type"] == "bind"
    }
    assert binds == {
        ("/sys/fs/cgroup", "/host/cgroup", False),
        (f"{stack.disks}-run", "/run/fta-tenant-disk", True),
        (stack.imports, "/import", False),  # the operator's recorded candle files
    }


def test_networks_keep_the_portal_away_from_docker(stack: Stack) -> None:
    networks = {
        name: set(c.attrs["NetworkSettings"]["Networks"]) for name, c in stack.containers().items()
    }
    assert networks["portal"] == {CONTROL_NETWORK}
    assert networks["worker"] == {CONTROL_NETWORK, DOCKER_API_NETWORK}
    assert networks["socket-proxy"] == {DOCKER_API_NETWORK}
    assert stack.docker.networks.get(DOCKER_API_NETWORK).attrs["Internal"] is True
    assert stack.containers()["market-data"].name == "fta-market-data"

    probe = "import socket; socket.create_connection(('socket-proxy', 2375), 3)"
    result = stack.containers()["portal"].exec_run(["python3", "-c", probe])
    assert result.exit_code != 0, "the portal reached the socket proxy"


def test_logs_carry_no_secret(stack: Stack) -> None:
    secrets = parse_env(REPO / ".env")
    for name, container in stack.containers(one_shots=True).items():
        logs = container.logs().decode(errors="replace")
        for key in ("FTA_SECRET_KEY", "FTA_AUDIT_KEY", "POSTGRES_PASSWORD"):
            assert secrets[key] not in logs, f"{key} in the logs of {name}"


def test_down_keeps_the_data_volume(stack: Stack) -> None:
    down = stack.script("down.sh")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not stack.containers()
    assert not exists(stack.docker.networks.get, CONTROL_NETWORK)
    assert exists(stack.docker.volumes.get, DATA_VOLUME)
    # And the stack comes back on the same data (the generated password still opens it).
    up = stack.script("up.sh")
    assert up.returncode == 0, up.stdout + up.stderr
    assert httpx.get(f"{PORTAL}/healthz", timeout=5).status_code == 200


def _readme_curl_blocks() -> str:
    """The shell blocks of the README's curl section, in order (the bot's uses the job's
    variables)."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Try it with curl") :]
    section = section[: section.index("\n## ", 1)]
    blocks = section.split("```sh\n")[1:]
    return "".join(block[: block.index("```")] for block in blocks)


def test_the_readme_curl_sequence_runs_a_backtest_and_a_bot(stack: Stack, tmp_path: Path) -> None:
    email = f"readme-{secrets.token_hex(4)}@example.com"
    script = tmp_path / "readme.sh"
    # The block runs from the repository (it reads docs/examples); the archive lands in tmp.
    script.write_text(
        "set -euo pipefail\n"
        + _readme_curl_blocks().replace("-o result.zip", f"-o {tmp_path}/r.zip")
    )
    env_password = secrets.token_urlsafe(16)
    run = subprocess.run(
        ["timeout", "600", "bash", str(script)],
        cwd=REPO,
        env={**clean_environment(), "EMAIL": email, "PASSWORD": env_password},
        capture_output=True,
        text=True,
        timeout=660,
    )
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    _, verified, job, result, started, seen, stopped = (json.loads(line) for line in lines[:7])
    assert verified == {"email": email, "verified": True}
    assert job["status"] == "succeeded", job
    assert result["trades"] > 0
    assert zipfile.is_zipfile(tmp_path / "r.zip")
    assert started["desired_state"] == "running" and seen["id"] == started["id"]
    assert seen["actual_state"] == "running", seen
    assert stopped["desired_state"] == "stopped"
    README_ACCOUNT.update(
        email=email, password=env_password, job=job["id"], bot=started["id"], result=result
    )


def _sql(stack: Stack, query: str) -> str:
    script = f'PGPASSWORD=$POSTGRES_PASSWORD psql -h /tmp -U fta -d fta -Atc "{query}"'
    code, out = stack.containers()["postgres"].exec_run(["sh", "-c", script])
    assert code == 0, out
    return str(out.decode().strip())


def _rows(stack: Stack) -> dict[str, int]:
    # Fixed table names of this module.
    counts = " UNION ALL ".join(
        f"SELECT '{t}', count(*) FROM {t}"  # noqa: S608
        for t in COUNTED_TABLES
    )
    return {k: int(v) for k, v in (line.split("|") for line in _sql(stack, counts).split())}


def _api(token: str | None = None) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"{PORTAL}/api/v1", headers=headers, timeout=30)


def _token() -> str:
    body = {"email": README_ACCOUNT["email"], "password": README_ACCOUNT["password"]}
    with _api() as api:
        answer = api.post("/auth/token", json=body)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _bot_running(stack: Stack, bot_id: str, seconds: float = 300) -> tuple[dict[str, Any], str]:
    """The bot as the API shows it once it runs, in a container Docker runs, and that
    container's id (a restored row may say `running` before its worker restarted it)."""
    deadline = time.monotonic() + seconds
    with _api(_token()) as api:
        while True:
            bot: dict[str, Any] = api.get(f"/bots/{bot_id}").json()
            found = stack.docker.containers.list(filters={"label": f"fta.bot={bot_id}"})
            if bot["actual_state"] == "running" and len(found) == 1:
                return bot, str(found[0].id)
            assert time.monotonic() < deadline, f"bot not running: {bot}, containers {found}"
            time.sleep(3)


@pytest.fixture
def gnupg(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """The operator's GnuPG home and public key, its agents stopped afterwards."""
    home = tmp_path / "gnupg"
    with operator_key(home) as key:
        yield home, key


# Issues a paid month's invoice to the tenant argv[1] through the billing service, in the
# stack's worker (as its billing round does for a PayPal payment); prints its number.
ISSUE_INVOICE = """
import sys
from datetime import date
from decimal import Decimal
from fta.billing.invoices import ClientIdentity, Line, Period, issue_invoice
from fta.db import session_scope
client = ClientIdentity(
    name="README Client", address_lines=("1 rue de la Paix",), postcode="75002", city="Paris",
    country="FR",
)
with session_scope() as session:
    invoice = issue_invoice(
        session, tenant_id=sys.argv[1], client=client,
        lines=[Line("Abonnement, novembre 2026", Decimal(1), Decimal("19"))],
        period=Period(date(2026, 11, 1), date(2026, 11, 30)),
        payment_ref="E2E-SALE-1", paid_on=date(2026, 11, 1),
    )
    print(invoice.number)
"""


def _invoices() -> tuple[list[dict[str, Any]], bytes]:
    """The README client's invoices as it lists them, and the first one's PDF."""
    with _api(_token()) as api:
        listed: list[dict[str, Any]] = api.get("/invoices").json()
        assert listed, "no invoice"
        pdf = api.get(listed[0]["pdf_url"].removeprefix("/api/v1"))
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF"), pdf.text[:300]
    return listed, pdf.content


def test_a_backup_restored_on_an_emptied_host_gives_everything_back(
    stack: Stack, tmp_path: Path, gnupg: tuple[Path, Path]
) -> None:
    assert README_ACCOUNT, "the README's sequence runs first and leaves its client"
    with _api(_token()) as api:
        started = api.post(f"/bots/{README_ACCOUNT['bot']}/start")
        assert started.status_code in (200, 202), started.text
    _, before_container = _bot_running(stack, README_ACCOUNT["bot"])
    email = README_ACCOUNT["email"]
    tenant = _sql(stack, f"SELECT tenant_id FROM users WHERE email = '{email}'")  # noqa: S608
    code, out = stack.containers()["worker"].exec_run(["python3", "-c", ISSUE_INVOICE, tenant])
    assert code == 0 and out.decode().startswith("F-"), out.decode()[-2000:]
    invoices = _invoices()
    rows = _rows(stack)
    assert rows["job_results"] >= 1 and rows["bots"] >= 1 and rows["invoices"] >= 1
    home, key = gnupg

    # A copy goes off the host, to a stand-in S3 on the loopback; the restore fetches it there.
    with s3_standin() as s3:
        bucket: Any = s3.client()
        bucket.create_bucket(
            Bucket="fta-backups", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        )
        backup = stack.run(
            "deploy/backup.sh",
            FTA_BACKUP_KEY=str(key),
            FTA_BACKUP_DIR=str(tmp_path / "backups"),
            **s3.env("fta-backups"),
        )
        assert backup.returncode == 0, backup.stdout + backup.stderr
        archive = Path(backup.stdout.strip().splitlines()[-1])
        assert archive.parent == tmp_path / "backups" and archive.stat().st_mode & 0o077 == 0
        content = archive.read_bytes()
        assert b"PGDMP" not in content and README_ACCOUNT["email"].encode() not in content
        url = f"s3://fta-backups/fta-backups/{archive.name}"
        assert f"uploaded to {url}" in backup.stderr

        # Everything goes: the stack, its volumes, the tenants' containers, networks and
        # disks, and .env, and the local backups; as on a new host.
        env_file = REPO / ".env"
        secrets_before = env_file.read_bytes()
        stack.empty_host()
        archive.unlink()
        assert _port_closed()

        restore = stack.run("deploy/restore.sh", url, GNUPGHOME=str(home), **s3.env("fta-backups"))
    assert restore.returncode == 0, restore.stdout + restore.stderr
    assert env_file.read_bytes() == secrets_before
    assert _rows(stack) == rows
    with _api(_token()) as api:
        job = api.get(f"/jobs/{README_ACCOUNT['job']}/result")
        assert job.status_code == 200 and job.json() == README_ACCOUNT["result"]
    # The invoice, as issued: the same number, amounts and PDF.
    assert _invoices() == invoices
    # The bot wanted running runs again, in a new container, on its own disk.
    _, after_container = _bot_running(stack, README_ACCOUNT["bot"])
    assert after_container != before_container
    assert any(Path(stack.disks, "images").glob("*.img"))


def _port_closed() -> bool:
    try:
        httpx.get(PORTAL, timeout=2)
    except httpx.TransportError:
        return True
    return False


def _bot_api(token: str) -> int:
    """The status of a call to the bot's own freqtrade API, through the portal's relay."""
    answer = httpx.get(
        f"{PORTAL}/bots/{README_ACCOUNT['bot']}/api/v1/version",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    return answer.status_code


FETCH_METRICS = (
    "import urllib.request, urllib.error\n"
    "try:\n"
    "    answer = urllib.request.urlopen('http://market-data:8090/metrics', timeout=10)\n"
    "    print(answer.status, answer.read().decode())\n"
    "except urllib.error.HTTPError as error:\n"
    "    print(error.code)\n"
)


def test_the_gateway_serves_its_metrics_to_the_control_network_only(stack: Stack) -> None:
    _, bot_container = _bot_running(stack, README_ACCOUNT["bot"])
    # From the bot's tenant network: refused, though the bot's own market data is served.
    code, out = stack.docker.containers.get(bot_container).exec_run(
        ["python3", "-c", FETCH_METRICS], user="10000"
    )
    assert code == 0 and out.decode().strip() == "404", out
    # From the control network (the worker's): the tenants' requests, by their networks.
    code, out = stack.containers()["worker"].exec_run(["python3", "-c", FETCH_METRICS])
    text = out.decode()
    assert code == 0 and text.startswith("200 "), text[:500]
    networks = stack.docker.containers.get(bot_container).attrs["NetworkSettings"]["Networks"]
    (address,) = (n["IPAddress"] for name, n in networks.items() if name.startswith("fta-client-"))
    subnet = ipaddress.ip_network(f"{address}/27", strict=False)
    sample = f'fta_gateway_requests_total{{network="{subnet}",outcome="admitted"}} '
    admitted = re.search(re.escape(sample) + r"(\d+)", text)
    assert admitted is not None and int(admitted.group(1)) > 0, text[:2000]


def test_the_secret_key_and_the_database_passwords_rotate_logging_clients_out_only(
    stack: Stack,
) -> None:
    """docs/operations.md's steps: new values in .env (the old secret key kept as the
    previous one), then `make up`."""
    assert README_ACCOUNT, "the README's sequence runs first and leaves its client"
    token = _token()
    _, container = _bot_running(stack, README_ACCOUNT["bot"])
    assert _bot_api(token) == 200
    env_file = REPO / ".env"
    values = parse_env(env_file)
    rotated = {
        "FTA_SECRET_KEY": secrets.token_hex(32),
        "FTA_SECRET_KEY_PREVIOUS": values["FTA_SECRET_KEY"],
        "FTA_DATABASE_OWNER_PASSWORD": secrets.token_hex(32),
        "FTA_DATABASE_RUNTIME_PASSWORD": secrets.token_hex(32),
    }
    lines = []
    for line in env_file.read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={rotated[key]}" if key in rotated else line)
    env_file.write_text("\n".join(lines) + "\n")
    up = stack.script("up.sh")
    assert up.returncode == 0, up.stdout + up.stderr

    # Signed with the old key: logged out. A new log-in works, on the new passwords.
    with _api(token) as api:
        assert api.get("/jobs").status_code == 401
    fresh = _token()
    with _api(fresh) as api:
        result = api.get(f"/jobs/{README_ACCOUNT['job']}/result")
        assert result.status_code == 200 and result.json() == README_ACCOUNT["result"]
    # The bot never stopped, and the relay still reaches its API with the secrets it was
    # started with.
    assert _bot_running(stack, README_ACCOUNT["bot"])[1] == container
    assert _bot_api(fresh) == 200
    migrate = stack.containers(one_shots=True)["migrate"].attrs["State"]
    assert migrate["ExitCode"] == 0, migrate


# A backtest whose strategy takes this long before it trades: it runs through the upgrade.
PATIENT_SECONDS = 240
PATIENT_BACKTEST = {
    "exchange": "binance",
    "pairs": ["BTC/USDT"],
    "timeframe": "5m",
    "timerange": "20240101-20240105",
    "stake_amount": 100,
    "max_open_trades": 1,
}


def _patient_job() -> str:
    """A running backtest of the README's client that lasts through an upgrade; its id."""
    source = (REPO / "tests" / "integration" / "strategies" / "Patient.py").read_text()
    source = source.replace("SECONDS = 20\n", f"SECONDS = {PATIENT_SECONDS}\n")
    with _api(_token()) as api:
        strategy = api.post("/strategies", json={"name": "Patient", "source": source})
        assert strategy.status_code == 201, strategy.text
        body = {
            "kind": "backtest",
            "strategy_id": strategy.json()["id"],
            "config": PATIENT_BACKTEST,
        }
        submitted = api.post("/jobs", json=body)
        assert submitted.status_code == 202, submitted.text
        job_id = str(submitted.json()["id"])
        deadline = time.monotonic() + 300
        while "patient: second 2\n" not in api.get(f"/jobs/{job_id}/logs").text:
            assert time.monotonic() < deadline, api.get(f"/jobs/{job_id}").json()
            time.sleep(2)
    return job_id


def test_an_upgrade_keeps_jobs_and_bots_running_and_refuses_a_skipped_step(
    stack: Stack, tmp_path: Path, gnupg: tuple[Path, Path]
) -> None:
    assert README_ACCOUNT, "the README's sequence runs first and leaves its client"
    _, container = _bot_running(stack, README_ACCOUNT["bot"])
    _, key = gnupg
    steps = REPO / "deploy" / "upgrade-from"
    shipped = steps.read_text()
    steps.write_text("9999 fta 99\n")
    try:
        refused = stack.run("deploy/deploy.sh", "--no-backup")
    finally:
        steps.write_text(shipped)
    assert refused.returncode == 1 and "upgrade to fta 99 first" in refused.stderr, refused.stderr

    # The portal is asked all along: how long it fails is the upgrade's downtime.
    failures: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                ok = httpx.get(f"{PORTAL}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                ok = False
            if not ok:
                failures.append(time.monotonic())
            time.sleep(0.25)

    # The new version's settings differ for the portal and the worker: both are recreated.
    env_file = REPO / ".env"
    settings = env_file.read_text()
    env_file.write_text(settings + "FTA_LOGIN_MAX_FAILURES=6\nFTA_WARM_IDLE_SECONDS=601\n")
    old = {name: stack.containers()[name].id for name in ("portal", "worker")}
    job_id = _patient_job()
    # The job's container (a warm container's label names no job: the row does).
    job_container = _sql(stack, f"SELECT container_id FROM jobs WHERE id = '{job_id}'")  # noqa: S608
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        upgrade = stack.run(
            "deploy/deploy.sh",
            FTA_BACKUP_KEY=str(key),
            FTA_BACKUP_DIR=str(tmp_path / "backups"),
        )
    finally:
        done.set()
        watcher.join(timeout=10)
        env_file.write_text(settings)
    assert upgrade.returncode == 0, upgrade.stdout[-3000:] + upgrade.stderr[-3000:]
    assert "deploy: done" in upgrade.stdout
    assert len(list((tmp_path / "backups").glob("fta-backup-*.tar.gpg"))) == 1
    print(f"portal failed {len(failures) * 0.25:.1f} s during the upgrade")
    assert all(stack.containers()[name].id != old[name] for name in old)
    # The job went on in its container, adopted by the new worker, and ends as it would have.
    assert _sql(stack, f"SELECT status FROM jobs WHERE id = '{job_id}'") == "running"  # noqa: S608
    assert stack.docker.containers.get(job_container).status == "running"
    with _api(_token()) as api:
        deadline = time.monotonic() + PATIENT_SECONDS + 300
        while (job := api.get(f"/jobs/{job_id}").json())["status"] == "running":
            assert time.monotonic() < deadline, job
            time.sleep(3)
        logs = api.get(f"/jobs/{job_id}/logs").text
        assert job["status"] == "succeeded", (job, logs[-3000:])
        assert api.get(f"/jobs/{job_id}/result").status_code == 200
    seconds = [int(n) for n in re.findall(r"^patient: second (\d+)$", logs, re.M)]
    assert seconds == list(range(1, PATIENT_SECONDS + 1)), seconds
    # The bot kept its container and goes on reporting to the new worker.
    assert _bot_running(stack, README_ACCOUNT["bot"])[1] == container
    with _api(_token()) as api:
        before = api.get(f"/bots/{README_ACCOUNT['bot']}").json()["status_at"]
        deadline = time.monotonic() + 120
        while api.get(f"/bots/{README_ACCOUNT['bot']}").json()["status_at"] == before:
            assert time.monotonic() < deadline, "the bot's reports stopped after the upgrade"
            time.sleep(3)
