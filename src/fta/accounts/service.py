"""Sign-up, log-in, token revocation and password changes."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fta import audit
from fta.accounts import personal_tokens, throttle, two_factor
from fta.accounts.models import (
    CLOSED,
    AuthSession,
    PersonalToken,
    Role,
    Tenant,
    TenantStatus,
    TokenScope,
    User,
)
from fta.accounts.security import (
    DUMMY_HASH,
    HashingBusy,
    decode_token,
    encode_token,
    hash_password,
    verify_password,
)
from fta.db import utcnow
from fta.errors import Conflict, Invalid, NotFound, Unauthorized
from fta.plans.service import default_plan
from fta.settings import get_settings

BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
MIN_PASSWORD_LENGTH = 10
DELETED = "this account was deleted at its owner's request"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, its tenant (None for platform admins) and its role; what the
    credential may do (a read-only personal token only reads)."""

    user_id: uuid.UUID
    # The log-in session, or the personal token, the caller authenticated with.
    session_id: uuid.UUID
    tenant_id: str | None
    role: Role
    scope: TokenScope = TokenScope.WRITE
    personal_token: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int


def trial_end(now: datetime) -> datetime:
    return now + timedelta(days=get_settings().trial_days)


def get_tenant(session: Session, tenant_id: str) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("unknown account")
    return tenant


def note_network_use(tenant: Tenant, now: datetime) -> None:
    """The tenant's network was used now (a job or bot started on it)."""
    tenant.network_used_at = now


def assign_network_slot(tenant: Tenant, index: int | None) -> None:
    """The tenant holds network slot `index` (fta.worker.network_slots), or none."""
    tenant.subnet_index = index


def new_tenant_id() -> str:
    return "".join(secrets.choice(BASE32) for _ in range(8))


def _normalise_email(email: str) -> str:
    return email.strip().lower()


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"the password must be at least {MIN_PASSWORD_LENGTH} characters long")


def signup(
    session: Session, *, email: str, password: str, display_name: str, ip: str | None
) -> User:
    """Creates a tenant and its first (client) user on the default plan. The tenant takes
    no network slot: the worker gives it one when it first runs something.

    Sign-ups are throttled per client address before anything is hashed or written.
    """
    _check_password(password)
    if ip is not None:
        throttle.reserve_signup(session, ip)
    email = _normalise_email(email)
    if session.scalars(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict("an account already exists for this email address: log in instead")
    tenant = Tenant(
        id=new_tenant_id(),
        display_name=display_name,
        plan_id=default_plan(session).id,
        trial_ends_at=trial_end(utcnow()),
    )
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError as exc:  # a tenant id collision is astronomically rare: retry once
        raise Conflict("please retry the sign-up") from exc
    user = User(
        tenant_id=tenant.id, email=email, password_hash=hash_password(password), role=Role.CLIENT
    )
    session.add(user)
    session.flush()
    audit.service.record(
        session, actor=str(user.id), tenant_id=tenant.id, action="account.signup", ip=ip
    )
    return user


def create_admin(session: Session, *, email: str, password: str) -> User:
    _check_password(password)
    email = _normalise_email(email)
    if session.scalars(select(User.id).where(User.email == email)).first() is not None:
        raise Conflict(f"a user with the email {email} already exists")
    user = User(
        tenant_id=None,
        email=email,
        password_hash=hash_password(password),
        role=Role.ADMIN,
        # The operator creates administrators with an address they hold.
        email_verified_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit.service.record(session, actor="cli", action="admin.create", target=str(user.id))
    return user


def _refusal(session: Session, user: User | None, ip: str | None, detail: str) -> Unauthorized:
    """Audits a failed password check, commits it, and returns the error to raise.

    Committed here because the request's transaction is rolled back with the error. Unknown
    accounts are audited too (on the platform's chain), so both paths do the same work.
    """
    if user is None:
        audit.service.record(session, actor="anonymous", action="auth.failed.unknown", ip=ip)
    else:
        audit.service.record(
            session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.failed", ip=ip
        )
    session.commit()
    return Unauthorized(detail)


@contextmanager
def _uncounted_when_busy(session: Session, reservation: int) -> Iterator[None]:
    """A password check refused for lack of a hashing slot is no failed attempt."""
    try:
        yield
    except HashingBusy:
        throttle.withdraw(session, reservation)
        raise


def login(
    session: Session,
    *,
    email: str,
    password: str,
    ip: str | None,
    ttl: int | None = None,
    otp: str | None = None,
) -> IssuedToken:
    """Issues a token for a correct password, valid `ttl` seconds (the API's by default);
    failures are throttled (see `throttle`). An account with two-factor log-in also needs
    `otp`, a code of its app or a recovery code: without one, raises CodeRequired."""
    email = _normalise_email(email)
    reservation = throttle.reserve_attempt(session, email, ip)
    user = session.scalars(select(User).where(User.email == email)).first()
    with _uncounted_when_busy(session, reservation):
        correct = verify_password(DUMMY_HASH if user is None else user.password_hash, password)
    if user is None or not correct:
        raise _refusal(session, user, ip, "wrong email or password")
    if two_factor.enabled(user):
        if otp is None:
            pending = two_factor.pending_token(user, utcnow())
            # A right password is no failure; the account's other failures stay counted
            # until a code is right too.
            throttle.withdraw(session, reservation)
            raise two_factor.CodeRequired(pending)
        return _second_factor(session, user.id, otp, ip=ip, ttl=ttl)
    throttle.forgive(session, email)
    return open_session(session, user, ip=ip, ttl=ttl)


def login_with_code(
    session: Session, *, pending: str, code: str, ip: str | None, ttl: int | None = None
) -> IssuedToken:
    """The second step of a log-in: the code for the pending token of a right password
    (`two_factor.CodeRequired.pending`). A wrong code counts as a failed log-in."""
    user = two_factor.pending_user(session, pending, utcnow())
    throttle.reserve_attempt(session, user.email, ip)
    return _second_factor(session, user.id, code, ip=ip, ttl=ttl)


def _second_factor(
    session: Session, user_id: uuid.UUID, code: str, *, ip: str | None, ttl: int | None
) -> IssuedToken:
    """Opens the session if `code` is right; the caller reserved a failure (forgiven here)."""
    user = two_factor.locked_user(session, user_id)
    if not two_factor.check_code(session, user, code, utcnow(), ip):
        raise _refusal(session, user, ip, "wrong two-factor code")
    throttle.forgive(session, user.email)
    return open_session(session, user, ip=ip, ttl=ttl)


def _user_of(session: Session, principal: Principal) -> User:
    user = session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("this account no longer exists")
    return user


def _proven(
    session: Session, principal: Principal, *, password: str | None, code: str, ip: str | None
) -> User:
    """The caller's user, locked, once it gave its password (unless None) and a second-factor
    code, both throttled like a log-in; the refusal names what was wrong."""
    email = _user_of(session, principal).email
    reservation = throttle.reserve_attempt(session, email, ip)  # commits
    user = two_factor.locked_user(session, principal.user_id)
    if password is not None:
        with _uncounted_when_busy(session, reservation):
            correct = verify_password(user.password_hash, password)
        if not correct:
            raise _refusal(session, user, ip, "the password is wrong")
    if not two_factor.check_code(session, user, code, utcnow(), ip):
        raise _refusal(session, user, ip, "wrong two-factor code")
    throttle.forgive(session, email)
    return user


def turn_off_two_factor(
    session: Session, principal: Principal, *, password: str, code: str, ip: str | None
) -> None:
    """Turns two-factor log-in off: the password and a code (or a recovery code) first."""
    if not two_factor.enabled(_user_of(session, principal)):
        raise Conflict("two-factor log-in is already off")
    two_factor.turn_off(
        session, _proven(session, principal, password=password, code=code, ip=ip), ip
    )


def renew_recovery_codes(
    session: Session, principal: Principal, *, code: str, ip: str | None
) -> list[str]:
    """New recovery codes, the old ones void: a code (or a recovery code) first."""
    if not two_factor.enabled(_user_of(session, principal)):
        raise Conflict("two-factor log-in is off: turn it on first")
    user = _proven(session, principal, password=None, code=code, ip=ip)
    return two_factor.renew_recovery_codes(session, user, utcnow(), ip)


def open_session(
    session: Session, user: User, *, ip: str | None, ttl: int | None = None
) -> IssuedToken:
    """A new session of `user` (who just proved who they are), valid `ttl` seconds; none
    for an account being deleted."""
    if user.tenant_id is not None:
        status = session.scalar(select(Tenant.status).where(Tenant.id == user.tenant_id))
        if status in CLOSED:
            raise Unauthorized(DELETED)
    ttl = ttl or get_settings().access_token_ttl_seconds
    now = utcnow()
    auth_session = AuthSession(
        user_id=user.id, created_at=now, expires_at=now + timedelta(seconds=ttl)
    )
    session.add(auth_session)
    session.flush()
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.login", ip=ip
    )
    return IssuedToken(encode_token(user.id, auth_session.id, now, ttl), ttl)


def authenticate(session: Session, token: str, *, personal: bool = True) -> Principal:
    """Resolves a bearer token to its principal, refusing revoked or expired sessions; a
    personal API token too, unless `personal` is False (the pages take log-ins only)."""
    if personal_tokens.looks_like(token):
        found = personal_tokens.resolve(session, token, utcnow()) if personal else None
        if found is None:
            raise Unauthorized(
                "this personal token is unknown, revoked or expired: make a new one at "
                "/app/account/tokens"
            )
        personal_token, owner, status, billing = found
        _refuse_suspended(status, billing)
        return Principal(
            owner.id,
            personal_token.id,
            owner.tenant_id,
            Role(owner.role),
            scope=TokenScope(personal_token.scope),
            personal_token=True,
        )
    claims = decode_token(token)
    if claims is None:
        raise Unauthorized("invalid or expired token: request a new one at /api/v1/auth/token")
    row = session.execute(
        select(AuthSession, User, Tenant.status, Tenant.billing_status)
        .join(User, User.id == AuthSession.user_id)
        .outerjoin(Tenant, Tenant.id == User.tenant_id)
        .where(AuthSession.id == claims.session_id, AuthSession.user_id == claims.user_id)
    ).first()
    if row is None:
        raise Unauthorized("this token was revoked: request a new one at /api/v1/auth/token")
    auth_session, user, tenant_status, billing_status = row
    if auth_session.revoked_at is not None or auth_session.expires_at <= utcnow():
        raise Unauthorized("this token was revoked: request a new one at /api/v1/auth/token")
    _refuse_suspended(tenant_status, billing_status)
    return Principal(user.id, auth_session.id, user.tenant_id, Role(user.role))


def _refuse_suspended(tenant_status: str | None, billing_status: str | None) -> None:
    # A suspended account's client still signs in: to pay, to read why an operator
    # suspended it, to export its data. Nothing of it runs (`require_active`).
    if tenant_status in CLOSED:
        raise Unauthorized(DELETED)


def require_active(tenant: Tenant | None, what: str) -> None:
    """Refuses to start `what` ("jobs", "bots") for an account that is not active, saying
    why: an operator's reason, when an operator suspended it."""
    if tenant is not None and tenant.status == TenantStatus.ACTIVE:
        return
    if tenant is not None and tenant.suspension_reason:
        raise Conflict(
            f"this account is suspended by the operator: {tenant.suspension_reason} "
            f"({what} cannot be started until the suspension is lifted; contact support)"
        )
    raise Conflict(f"this account is suspended: {what} cannot be started")


def principal_of_credential(
    session: Session, user_id: uuid.UUID, credential_id: uuid.UUID, *, personal: bool
) -> Principal:
    """The principal of a credential its holder proved earlier (a token made from it, such
    as a bot API token): refused, like `authenticate` refuses the credential itself, once it
    is revoked or expired or its account suspended. `credential_id` is a log-in session's, or
    a personal token's when `personal`."""
    now = utcnow()
    model = PersonalToken if personal else AuthSession
    row = session.execute(
        select(model, User, Tenant.status, Tenant.billing_status)
        .join(User, User.id == model.user_id)
        .outerjoin(Tenant, Tenant.id == User.tenant_id)
        .where(model.id == credential_id, model.user_id == user_id)
    ).first()
    if row is None:
        raise Unauthorized("the credential this token was made from is no longer valid")
    credential, user, tenant_status, billing_status = row
    expires_at = credential.expires_at
    if credential.revoked_at is not None or (expires_at is not None and expires_at <= now):
        raise Unauthorized("the credential this token was made from is no longer valid")
    _refuse_suspended(tenant_status, billing_status)
    if isinstance(credential, PersonalToken):
        scope = TokenScope(credential.scope)
        return Principal(user.id, credential.id, user.tenant_id, Role(user.role), scope, True)
    return Principal(user.id, credential.id, user.tenant_id, Role(user.role))


def logout(session: Session, principal: Principal, ip: str | None) -> None:
    """Revokes the caller's credential: its session, or the personal token it called with."""
    revoked = PersonalToken if principal.personal_token else AuthSession
    session.execute(
        update(revoked).where(revoked.id == principal.session_id).values(revoked_at=utcnow())
    )
    audit.service.record(
        session,
        actor=str(principal.user_id),
        tenant_id=principal.tenant_id,
        action="auth.logout",
        ip=ip,
    )


def change_password(
    session: Session, principal: Principal, *, current: str, new: str, ip: str | None
) -> None:
    """Changes the password and revokes every session of the user, this one included."""
    user = session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("this account no longer exists")
    # The current password is a password oracle too: throttled like a log-in.
    reservation = throttle.reserve_attempt(session, user.email, ip)
    with _uncounted_when_busy(session, reservation):
        correct = verify_password(user.password_hash, current)
    if not correct:
        raise _refusal(session, user, ip, "the current password is wrong")
    throttle.forgive(session, user.email)
    _check_password(new)
    user.password_hash = hash_password(new)
    user.password_changed_at = utcnow()
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    audit.service.record(
        session, actor=str(user.id), tenant_id=user.tenant_id, action="auth.password_changed", ip=ip
    )


def confirm_password(session: Session, principal: Principal, password: str, ip: str | None) -> User:
    """The caller's user, once it typed its password again (before an action that cannot be
    undone); a wrong one is throttled and audited like a failed log-in."""
    user = session.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("this account no longer exists")
    reservation = throttle.reserve_attempt(session, user.email, ip)
    with _uncounted_when_busy(session, reservation):
        correct = verify_password(user.password_hash, password)
    if not correct:
        raise _refusal(session, user, ip, "the password is wrong")
    throttle.forgive(session, user.email)
    return user
