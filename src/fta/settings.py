"""Process settings, read from the environment (and `.env` in development).

Outside development mode the application refuses to start while any secret
still holds a placeholder value, so a copied `.env.example` can never reach
production.
"""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fta.markets import DataSource, source_of_mode
from fta.tenantdisk.protocol import check_root

PLACEHOLDER_MARKERS = ("changeme", "placeholder", "change-me")


class Mode(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FTA_", env_file=None, extra="ignore")

    mode: Mode = Mode.DEVELOPMENT
    database_url: SecretStr = SecretStr("postgresql+psycopg://fta:changeme@127.0.0.1:5432/fta")
    secret_key: SecretStr = SecretStr("changeme-secret-key")
    # The key FTA_SECRET_KEY replaced, while rotating it (docs/operations.md): what it sealed
    # (two-factor secrets and recovery codes, running bots' API credentials) still opens;
    # what it signed (sessions, tokens, links) no longer does.
    secret_key_previous: SecretStr | None = None
    # Keys the audit log's chain links (HMAC-SHA256); the database never holds it, so rows
    # rewritten with database access alone no longer verify.
    audit_key: SecretStr = SecretStr("changeme-audit-key")
    access_token_ttl_seconds: Annotated[int, Field(ge=60, le=86_400)] = 900
    # The portal's pages: how long a log-in in the browser lasts, and whether its cookies are
    # sent over HTTPS only (turn off only to use the pages over plain HTTP, such as
    # http://127.0.0.1:8080 on a developer's machine).
    web_session_hours: Annotated[int, Field(ge=1, le=24 * 30)] = 12
    cookie_secure: bool = True
    # Failed password checks allowed per account, and per client address (which may front
    # several people), within a sliding window; beyond that the API answers 429.
    login_max_failures: Annotated[int, Field(ge=1, le=1000)] = 5
    login_max_failures_per_ip: Annotated[int, Field(ge=1, le=10_000)] = 30
    login_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900
    # Sign-ups allowed per client address within their own sliding window; beyond that 429.
    signup_max_per_ip: Annotated[int, Field(ge=1, le=10_000)] = 5
    signup_window_seconds: Annotated[int, Field(ge=1, le=604_800)] = 3600
    # Password-reset mails asked within an hour, per address typed (whether or not an account
    # has it) and per client address; beyond that 429.
    password_resets_per_account: Annotated[int, Field(ge=1, le=100)] = 3
    password_resets_per_ip: Annotated[int, Field(ge=1, le=10_000)] = 10
    # Strategy versions (a new strategy's first included) one tenant may store within a
    # sliding window, whatever its plan; beyond that 429. A person saving edits stays far below.
    strategy_uploads_per_window: Annotated[int, Field(ge=1, le=10_000)] = 30
    strategy_upload_window_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60
    # Password hashes (64 MiB each) one portal process runs at once; 0 sizes it from the
    # memory limit of the portal's cgroup (a quarter of it for hashing).
    password_hash_slots: Annotated[int, Field(ge=0, le=64)] = 0
    # Live log streams (server-sent events) one portal process serves at once, per tenant
    # and in all: each holds a connection and polls the database every second.
    log_streams_per_tenant: Annotated[int, Field(ge=1, le=100)] = 4
    log_streams_total: Annotated[int, Field(ge=1, le=10_000)] = 100

    # Names this installation: its worker manages only containers carrying this label, so
    # two installations (say staging and production) can share a Docker engine.
    instance: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,31}$")] = "fta"
    # What runs jobs and bots: "docker" on this host, through the socket proxy, or "ecs",
    # Fargate tasks (fta.runtime.ecs, configured by its FTA_ECS_* settings).
    runner: Literal["docker", "ecs"] = "docker"
    # Docker, reached only by the worker, only through the socket proxy.
    docker_host: str = "tcp://socket-proxy:2375"
    job_image: str = "fta/freqtrade:2026.9"
    candle_volume: str = "fta-candles"
    gateway_container: str = "fta-market-data"
    gateway_port: int = 8090
    # Where the worker itself asks the gateway (markets, euro rates, its health): empty, by
    # the container's name on the control network.
    gateway_url: str = ""
    # The relay in the market-data gateway through which the portal reaches each bot's own
    # freqtrade API (fta.freqtrade.bot_api): its address on the control network and the key
    # that signs the portal's requests to it (shared by portal and gateway only). Empty: the
    # portal relays nothing.
    bot_relay_url: str = "http://market-data:8091"
    bot_relay_key: SecretStr = SecretStr("")
    tenant_subnet_pool: str = "10.210.0.0/16"
    tenant_subnet_prefix: Annotated[int, Field(ge=16, le=29)] = 27
    tenant_bridge_prefix: str = "ftab-"
    tenant_cgroup_root: str = "fta"
    # Days without a job or a bot after which a tenant's network is removed and its subnet
    # given back to the pool (a suspended or cancelled account's at once).
    network_idle_days: Annotated[int, Field(ge=1, le=3650)] = 30
    # Where the worker sees the host's cgroup file system (read-only), to read the CPU time a
    # tenant's parent cgroup counted; in Compose the host's is mounted at /host/cgroup.
    host_cgroup_mount: str = "/sys/fs/cgroup"
    # Tenant data volumes are binds of size-capped file systems that a root helper on the host
    # mounts under this directory (see fta.tenantdisk); the worker asks for them on this socket.
    tenant_disk_root: str = "/var/lib/fta/tenant-disks"
    tenant_disk_socket: str = "/run/fta-tenant-disk/helper.sock"
    job_tmpfs_bytes: int = 256 * 1024 * 1024
    job_log_max_line: int = 4096
    job_log_max_bytes: int = 1024 * 1024
    job_result_max_bytes: int = 256 * 1024
    worker_poll_seconds: float = 2.0
    # Job containers one worker runs at once: its pool, which tenants share fairly (a tenant
    # holds at most ceil(slots / tenants with work) of them).
    job_slots: Annotated[int, Field(ge=1, le=256)] = 4
    reconcile_interval_seconds: float = 30.0
    # A worker's lease (fta.worker.leases): renewed four times in this time; the jobs and bots
    # of a worker that stopped renewing it are taken over by the others once it has run out.
    worker_lease_seconds: Annotated[float, Field(ge=2, le=3600)] = 60.0
    # The worker serves Prometheus metrics on this port of its container (the control network
    # only: no host port); 0 serves none.
    metrics_port: Annotated[int, Field(ge=0, le=65_535)] = 9108
    # Job containers started ahead for tenants' next jobs (fta.worker.warm_pool), at most this
    # many at once, each removed after waiting this long; 0 starts none.
    warm_containers: Annotated[int, Field(ge=0, le=256)] = 4
    warm_idle_seconds: Annotated[float, Field(gt=0, le=86_400)] = 600.0
    # Bots: how often the worker converges them, how often a bot reports its figures, how
    # long a stopping bot gets after SIGTERM, and how many crashes in a row it restarts from.
    bot_converge_seconds: Annotated[float, Field(gt=0, le=300)] = 5.0
    bot_report_seconds: Annotated[int, Field(ge=1, le=3600)] = 15
    bot_stop_timeout_seconds: Annotated[int, Field(ge=1, le=50)] = 30
    bot_max_restarts: Annotated[int, Field(ge=0, le=100)] = 5

    # Market data: replay (synthetic candles), recorded (the operator's imported candles, in
    # market_data_store) or proxy (the exchange's). The platform's data source follows it.
    market_data_mode: Literal["replay", "recorded", "proxy"] = "replay"
    market_data_store: str = "/var/lib/fta/market-data"

    # Billing access: a new account's free trial (days, and the CPU-hours it may use), the
    # grace after a failed payment before suspension, how long a month's usage stays open
    # for late samples, and how often the worker moves these states along.
    trial_days: Annotated[int, Field(ge=0, le=365)] = 14
    trial_cpu_hours: Annotated[Decimal, Field(ge=0, le=10_000)] = Decimal(5)
    # Trials are bounded harder than any plan, since anyone can open one: jobs at once and
    # queued, each job's wall-time limit, the wall-time hours all its jobs may run (a job
    # that sleeps uses no CPU but holds a slot), and the share of a worker's job slots all
    # trial accounts together may hold (at least one), so paying clients always find room.
    trial_max_concurrent_jobs: Annotated[int, Field(ge=1, le=100)] = 1
    trial_max_queued_jobs: Annotated[int, Field(ge=1, le=1000)] = 2
    trial_max_job_seconds: Annotated[int, Field(ge=60, le=86_400)] = 900
    trial_job_hours: Annotated[Decimal, Field(ge=0, le=10_000)] = Decimal(10)
    trial_job_slots_percent: Annotated[int, Field(ge=1, le=100)] = 50
    grace_days: Annotated[int, Field(ge=0, le=90)] = 7
    usage_close_grace_hours: Annotated[int, Field(ge=0, le=24 * 31)] = 48
    billing_check_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0

    # Invoices: the seller's identity, printed on every invoice. No invoice is issued while
    # its legal part (form, capital, registry, SIREN, VAT number) is a placeholder; the
    # contact part may stay one in development and test only.
    seller_name: str = "placeholder"
    seller_address: str = "placeholder"
    seller_postcode: str = "placeholder"
    seller_city: str = "placeholder"
    seller_siren: str = "placeholder"
    seller_vat_number: str = "placeholder"
    seller_legal_form: str = "placeholder"
    seller_share_capital: str = "placeholder"
    seller_registry: str = "placeholder"
    seller_email: str = "placeholder"
    invoice_payment_days: Annotated[int, Field(ge=0, le=60)] = 30
    invoice_late_penalty: str = "trois fois le taux d’intérêt légal"
    invoice_font_dir: str = "/usr/share/fonts/truetype/dejavu"
    # The operator's legal texts (notice, terms, privacy as <page>.<fr|en>.md; see
    # fta.portal.legal_texts); empty: the shipped defaults, with the seller's identity.
    legal_dir: str = ""
    # VIES, where EU VAT numbers are checked before reverse charge (fta.billing.vies).
    vies_url: str = "https://ec.europa.eu/taxation_customs/vies/rest-api/check-vat-number"
    vies_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 10.0
    # E-invoicing: how issued Factur-X invoices reach the operator's Plateforme Agréée (PA)
    # (docs/billing.md, "Factur-X and the e-invoicing reform"). "none": kept in fta only;
    # "directory": PDF and XML written to einvoice_outbox_dir for the PA's connector to
    # collect; "api": uploaded to the PA's REST endpoint einvoice_pa_url with the bearer
    # token einvoice_pa_token.
    einvoice_handoff: Literal["none", "directory", "api"] = "none"
    einvoice_outbox_dir: str = "/var/lib/fta/einvoice-outbox"
    einvoice_pa_url: str = ""
    einvoice_pa_token: SecretStr = SecretStr("")
    einvoice_pa_timeout_seconds: Annotated[float, Field(gt=0, le=120)] = 30.0

    # E-mail: the address clients reach the portal at (links in mails), the sender, and the
    # SMTP server the worker hands mail to (none: mail waits in the outbox, where
    # `fta mail-outbox` shows it). smtp_security: starttls, tls (implicit) or none.
    public_url: str = "http://127.0.0.1:8080"
    mail_from: str = "no-reply@localhost"
    smtp_host: str = ""
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 587
    smtp_security: Literal["starttls", "tls", "none"] = "starttls"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # How long a verification link stays valid, and verification mails per account per hour.
    email_verification_hours: Annotated[int, Field(ge=1, le=720)] = 48
    verification_mails_per_hour: Annotated[int, Field(ge=1, le=100)] = 5

    # PayPal (REST, sandbox first): the API's base URL and app credentials, the id PayPal
    # gave our webhook, where buyers come back after approving a subscription, and the
    # largest webhook body accepted. Webhook signing certificates come only from PayPal's
    # hosts and must chain to a root of paypal_cert_roots (a PEM file; empty: the system's).
    # A delivery is accepted up to paypal_webhook_max_age_hours after PayPal sent it (PayPal
    # retries for 3 days), and the endpoint answers 429 past its per-address and total rates.
    paypal_base_url: str = "https://api-m.sandbox.paypal.com"
    paypal_client_id: SecretStr = SecretStr("placeholder")
    paypal_client_secret: SecretStr = SecretStr("placeholder")
    paypal_webhook_id: str = "placeholder"
    paypal_cert_roots: str = ""
    paypal_return_url: str = "http://127.0.0.1:8080/api/v1/billing/return"
    paypal_cancel_url: str = "http://127.0.0.1:8080/"
    paypal_webhook_max_bytes: Annotated[int, Field(ge=1024, le=1024 * 1024)] = 64 * 1024
    paypal_webhook_max_age_hours: Annotated[int, Field(ge=1, le=720)] = 96
    paypal_webhook_per_address_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 60
    paypal_webhook_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 600

    @field_validator("tenant_subnet_pool")
    @classmethod
    def _valid_pool(cls, value: str) -> str:
        ipaddress.ip_network(value)
        return value

    @field_validator("tenant_disk_root")
    @classmethod
    def _plain_disk_root(cls, value: str) -> str:
        return check_root(value)

    @field_validator("tenant_bridge_prefix")
    @classmethod
    def _short_prefix(cls, value: str) -> str:
        # Linux interface names hold 15 characters: prefix + 8-character tenant id.
        if len(value) + 8 > 15:
            raise ValueError("tenant_bridge_prefix must leave room for an 8-character id")
        return value

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.mode is Mode.DEVELOPMENT:
            return self
        for name in ("secret_key", "database_url", "audit_key"):
            value = getattr(self, name).get_secret_value().lower()
            if any(marker in value for marker in PLACEHOLDER_MARKERS):
                raise ValueError(
                    f"FTA_{name.upper()} still holds a placeholder: generate a real secret "
                    "(make up writes one into .env)"
                )
        if len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("FTA_SECRET_KEY must be at least 32 characters long")
        previous = self.secret_key_previous
        if previous is not None and previous.get_secret_value():
            if len(previous.get_secret_value()) < 32:
                raise ValueError("FTA_SECRET_KEY_PREVIOUS must be at least 32 characters long")
            if previous.get_secret_value() == self.secret_key.get_secret_value():
                raise ValueError("FTA_SECRET_KEY_PREVIOUS is the current key: rotate to a new one")
        if len(self.audit_key.get_secret_value()) < 32:
            raise ValueError("FTA_AUDIT_KEY must be at least 32 characters long")
        relay_key = self.bot_relay_key.get_secret_value()
        if relay_key:
            check_relay_key(relay_key)
        return self

    def secret_keys(self) -> tuple[bytes, ...]:
        """The current secret key, then the previous one while a rotation is under way."""
        keys = [self.secret_key.get_secret_value().encode()]
        previous = self.secret_key_previous
        if previous is not None and previous.get_secret_value():
            keys.append(previous.get_secret_value().encode())
        return tuple(keys)

    @property
    def market_data_source(self) -> DataSource:
        """Where the candles of every job and bot come from now."""
        return source_of_mode(self.market_data_mode)


def check_relay_key(key: str) -> None:
    """Refuses a bot relay key that is a placeholder or too short to be secret (outside
    development; the gateway, which reads no other setting, calls it too)."""
    if any(marker in key.lower() for marker in PLACEHOLDER_MARKERS):
        raise ValueError(
            "FTA_BOT_RELAY_KEY still holds a placeholder: generate a real secret "
            "(make up writes one into .env)"
        )
    if len(key) < 32:
        raise ValueError("FTA_BOT_RELAY_KEY must be at least 32 characters long")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
