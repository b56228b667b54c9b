"""/api/v1/auth: sign-up, e-mail verification, tokens, logout, password change, personal API
tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, EmailStr, Field

from fta.accounts import password_reset, personal_tokens, service, verification
from fta.accounts.deps import PrincipalDep
from fta.accounts.models import PersonalToken, TokenScope
from fta.db import utcnow
from fta.web.deps import ClientIpDep, SessionDep
from fta.web.request_model import RequestModel

router = APIRouter(prefix="/auth", tags=["auth"])


class SignupIn(RequestModel):
    email: EmailStr
    password: str = Field(min_length=service.MIN_PASSWORD_LENGTH, max_length=200)
    # No control character (Postgres refuses NUL; names are printed on invoices and pages).
    display_name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")


class SignupOut(BaseModel):
    tenant_id: str
    user_id: uuid.UUID


class TokenIn(RequestModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=200)
    # With two-factor log-in: the app's 6-digit code, or a recovery code.
    otp: str | None = Field(default=None, max_length=32)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the OAuth token type
    expires_in: int


class PasswordChangeIn(RequestModel):
    current_password: str = Field(max_length=200)
    new_password: str = Field(min_length=service.MIN_PASSWORD_LENGTH, max_length=200)


@router.post("/signup", status_code=status.HTTP_201_CREATED)
def signup(body: SignupIn, session: SessionDep, ip: ClientIpDep) -> SignupOut:
    """Creates the account and mails a verification link: jobs and bots start once the
    address is verified."""
    user = service.signup(
        session, email=body.email, password=body.password, display_name=body.display_name, ip=ip
    )
    verification.send_verification(session, user, utcnow())
    assert user.tenant_id is not None  # noqa: S101 - sign-up always creates a tenant
    return SignupOut(tenant_id=user.tenant_id, user_id=user.id)


class VerifiedOut(BaseModel):
    email: str
    verified: bool = True


@router.get(verification.VERIFY_PATH.removeprefix("/api/v1/auth"))
def verify_email(
    token: Annotated[str, Query(max_length=200)], session: SessionDep, ip: ClientIpDep
) -> VerifiedOut:
    """The link of the verification mail: marks the address verified."""
    user = verification.verify(session, token, utcnow(), ip)
    return VerifiedOut(email=user.email)


class ResentOut(BaseModel):
    sent_to: str


@router.post(
    verification.RESEND_PATH.removeprefix("/api/v1/auth"), status_code=status.HTTP_202_ACCEPTED
)
def resend_verification(principal: PrincipalDep, session: SessionDep) -> ResentOut:
    """Mails a new verification link (a few per hour at most)."""
    user = verification.resend(session, principal, utcnow())
    return ResentOut(sent_to=user.email)


@router.post("/token")
def token(body: TokenIn, session: SessionDep, ip: ClientIpDep) -> TokenOut:
    """An access token for the e-mail and password; with two-factor log-in, also `otp`
    (without it: 401 "two-factor code required")."""
    issued = service.login(session, email=body.email, password=body.password, ip=ip, otp=body.otp)
    return TokenOut(access_token=issued.access_token, expires_in=issued.expires_in)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(principal: PrincipalDep, session: SessionDep, ip: ClientIpDep) -> Response:
    service.logout(session, principal, ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class PasswordForgotIn(RequestModel):
    email: str = Field(max_length=254)


class PasswordForgotOut(BaseModel):
    detail: str


class PasswordResetIn(RequestModel):
    token: str = Field(max_length=200)
    new_password: str = Field(min_length=service.MIN_PASSWORD_LENGTH, max_length=200)


@router.post("/password/forgot", status_code=status.HTTP_202_ACCEPTED)
def forgot_password(
    body: PasswordForgotIn, session: SessionDep, ip: ClientIpDep
) -> PasswordForgotOut:
    """Mails a password-reset link (valid one hour, once) if an account has this address.
    The answer is the same whether or not one has; 429 past 3 requests an hour for one
    address, or 10 from one network."""
    password_reset.request_reset(session, body.email, utcnow(), ip)
    return PasswordForgotOut(
        detail="if an account uses this address, a password-reset link was mailed to it"
    )


@router.post("/password/reset", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(body: PasswordResetIn, session: SessionDep, ip: ClientIpDep) -> Response:
    """Sets a new password with the token of the mailed link; every session of the account
    is revoked."""
    password_reset.reset(session, body.token, body.new_password, utcnow(), ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(
    body: PasswordChangeIn, principal: PrincipalDep, session: SessionDep, ip: ClientIpDep
) -> Response:
    service.change_password(
        session, principal, current=body.current_password, new=body.new_password, ip=ip
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class PersonalTokenIn(RequestModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]*$")
    scope: TokenScope = TokenScope.READ
    # None: the token never expires (until revoked).
    expires_in_days: int | None = Field(
        default=None, ge=1, le=personal_tokens.MAX_EXPIRY_DAYS, strict=True
    )


class PersonalTokenOut(BaseModel):
    id: uuid.UUID
    name: str
    scope: TokenScope
    hint: str = Field(description="the token's first characters, to recognise it")
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, token: PersonalToken) -> PersonalTokenOut:
        return cls(
            id=token.id,
            name=token.name,
            scope=TokenScope(token.scope),
            hint=token.hint,
            created_at=token.created_at,
            last_used_at=token.last_used_at,
            expires_at=token.expires_at,
        )


class CreatedPersonalTokenOut(PersonalTokenOut):
    token: str = Field(description="the token's value: shown this once, never again")


@router.get("/tokens")
def list_personal_tokens(principal: PrincipalDep, session: SessionDep) -> list[PersonalTokenOut]:
    """Your personal API tokens (not revoked), newest first; never their values."""
    return [PersonalTokenOut.of(t) for t in personal_tokens.list_tokens(session, principal)]


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_personal_token(
    body: PersonalTokenIn, principal: PrincipalDep, session: SessionDep, ip: ClientIpDep
) -> CreatedPersonalTokenOut:
    """Makes a personal API token (for scripts: `Authorization: Bearer fta_pat_...`). Its
    value is in this answer only. Not with a personal token: log in with your password."""
    created = personal_tokens.create(
        session,
        principal,
        name=body.name,
        scope=body.scope,
        expires_in_days=body.expires_in_days,
        now=utcnow(),
        ip=ip,
    )
    listed = PersonalTokenOut.of(created.token)
    return CreatedPersonalTokenOut(**listed.model_dump(), token=created.value)


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_personal_token(
    token_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, ip: ClientIpDep
) -> Response:
    """Revokes one of your personal tokens: it is refused from now on."""
    personal_tokens.revoke(session, principal, token_id, utcnow(), ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
