"""A bot's own freqtrade API for its owner (fta.freqtrade.bot_api): the secrets its container
runs with, the address the worker records, and where the portal's relay may send whom.

The secrets are derived from the platform's secret key and the bot's id, so the worker (which
writes them into the bot's config) and the portal (which sends them to the bot on its owner's
behalf) agree without storing them. The bot's row names the key its container was started
with: during a rotation of FTA_SECRET_KEY, a bot started before it is reached with the
previous key's secrets until it restarts.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import jwt
from sqlalchemy.orm import Session

from fta.accounts.models import Tenant
from fta.accounts.service import Principal, principal_of_credential
from fta.bots.models import ActualState, Bot
from fta.bots.service import get_bot
from fta.db import utcnow
from fta.errors import Conflict, Unauthorized, Unavailable
from fta.freqtrade.bot_api import API_PORT, BotApiSecrets, derive_secrets, in_tenant_range
from fta.settings import get_settings

log = logging.getLogger(__name__)

# The states in which a bot's container runs, its API server up or coming up.
REACHABLE = frozenset({ActualState.STARTING, ActualState.RUNNING})
# Tokens of a bot's token/login (FreqUI's way): valid for that bot alone, signed by the
# portal, and honoured only while the credential they were made from is valid.
BOT_TOKEN_AUDIENCE = "fta-bot-api"  # noqa: S105 - a claim value, not a secret
BOT_TOKEN_ALGORITHM = "HS256"  # noqa: S105 - an algorithm name
ACCESS_TTL = timedelta(minutes=15)
REFRESH_TTL = timedelta(hours=12)
TokenKind = Literal["access", "refresh"]


def derived_key(purpose: str, secret: bytes | None = None) -> bytes:
    """A key of its own for `purpose`, derived from the platform's current secret key (or
    the one given)."""
    secret = secret if secret is not None else get_settings().secret_keys()[0]
    return hmac.new(secret, f"fta-bot-api|{purpose}".encode(), hashlib.sha256).digest()


def key_id(secret: bytes) -> str:
    """A name for a secret key that tells nothing of it."""
    return hashlib.sha256(b"fta key id|" + secret).hexdigest()[:16]


def _secrets_under(secret: bytes, bot_id: uuid.UUID) -> BotApiSecrets:
    return derive_secrets(derived_key("secrets", secret), bot_id)


def start_secrets(bot_id: uuid.UUID) -> tuple[BotApiSecrets, str]:
    """The secrets a bot's new container runs with (under the current key), and that key's
    id, which its row keeps."""
    secret = get_settings().secret_keys()[0]
    return _secrets_under(secret, bot_id), key_id(secret)


def api_secrets(bot: Bot) -> BotApiSecrets:
    """The password, JWT key and websocket token of the bot's API server: under the key its
    container was started with (a container started before ids were kept: the previous key
    during a rotation, else the current one)."""
    keys = get_settings().secret_keys()
    if bot.api_key_id is None:
        secret = keys[-1]
    else:
        secret = next((k for k in keys if key_id(k) == bot.api_key_id), keys[0])
    return _secrets_under(secret, bot.id)


def record_api_address(
    session: Session, bot_id: uuid.UUID, container_id: str, address: str | None
) -> None:
    """The worker saw the bot's container at `address` on its tenant network (the engine's
    record, not the container's word). Ignored for a container the bot no longer has."""
    bot = session.get(Bot, bot_id)
    if bot is not None and bot.container_id == container_id:
        bot.api_address = address


@dataclass(frozen=True)
class RelayTarget:
    """Where the relay sends a request to the bot's API, and the credentials it adds."""

    bot_id: uuid.UUID
    address: str
    port: int
    authorization: str
    ws_token: str

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"


def relay_target(session: Session, tenant_id: str, bot_id: uuid.UUID) -> RelayTarget:
    """The tenant's running bot's API (NotFound for any other bot; Conflict while it does not
    run). Its address must lie in the tenant's own subnet as it is now."""
    bot = get_bot(session, tenant_id, bot_id)
    address = bot.api_address
    if address is None or ActualState(bot.actual_state) not in REACHABLE:
        raise Conflict(
            f"the bot is {bot.actual_state}: its API answers only while it runs; start it "
            f"(POST /api/v1/bots/{bot.id}/start) and ask again once it is running"
        )
    tenant = session.get(Tenant, tenant_id)
    settings = get_settings()
    if (
        tenant is None
        or tenant.subnet_index is None
        or not in_tenant_range(
            address, settings.tenant_subnet_pool, settings.tenant_subnet_prefix, tenant.subnet_index
        )
    ):
        log.warning("bot %s: recorded address %s is outside its tenant's subnet", bot.id, address)
        raise Unavailable("the bot's API cannot be reached right now: retry in a minute", 60)
    secrets = api_secrets(bot)
    return RelayTarget(bot.id, address, API_PORT, secrets.authorization, secrets.ws_token)


def _bot_token(principal: Principal, bot_id: uuid.UUID, kind: TokenKind) -> str:
    now = utcnow()
    claims = {
        "sub": str(principal.user_id),
        "cid": str(principal.session_id),
        "pat": principal.personal_token,
        "bot": str(bot_id),
        "typ": kind,
        "aud": BOT_TOKEN_AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + (ACCESS_TTL if kind == "access" else REFRESH_TTL)).timestamp()),
    }
    return jwt.encode(claims, derived_key("tokens"), algorithm=BOT_TOKEN_ALGORITHM)


def issue_bot_tokens(principal: Principal, bot_id: uuid.UUID) -> dict[str, str]:
    """An access and a refresh token for the bot's API, in freqtrade's shape."""
    return {
        "access_token": _bot_token(principal, bot_id, "access"),
        "refresh_token": _bot_token(principal, bot_id, "refresh"),
    }


def bot_token_principal(
    session: Session, token: str, bot_id: uuid.UUID, kind: TokenKind
) -> Principal | None:
    """The principal of a bot token of `kind` made for this bot; None when `token` is no bot
    token at all (another credential); Unauthorized for one that is expired, of another bot
    or kind, or whose credential is no longer valid."""
    try:
        claims = jwt.decode(
            token,
            derived_key("tokens"),
            algorithms=[BOT_TOKEN_ALGORITHM],
            audience=BOT_TOKEN_AUDIENCE,
            options={"require": ["sub", "cid", "pat", "bot", "typ", "exp", "iat", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("this bot token has expired: refresh it or log in again") from None
    except jwt.PyJWTError:
        return None
    if claims["bot"] != str(bot_id) or claims["typ"] != kind:
        raise Unauthorized(f"this token is not an {kind} token of this bot")
    try:
        user_id, credential_id = uuid.UUID(claims["sub"]), uuid.UUID(claims["cid"])
    except (ValueError, TypeError, AttributeError):
        return None
    return principal_of_credential(session, user_id, credential_id, personal=claims["pat"] is True)
