"""Signing in a browser: the session cookie, who it names, and the CSRF check of every form.

A browser session is an API token of kind ``browser`` (``accounts.issue_token``), held in
an HttpOnly, SameSite=Lax cookie (Secure over HTTPS) that lives as long as the token:
``session_token_ttl_minutes``. It is resolved through the process's token cache like any
bearer, so signing out (revoking the token) or deactivating the person ends it at once.
A browser token opens the pages only: the bearer API refuses it (``app.api.deps``), and a
bearer token in the cookie opens no page.

Every form carries a CSRF token derived from the session's own secret (an HMAC of it), so
it needs no storage, changes with each sign-in, and cannot be read by another site. The
sign-in form, before any session exists, is protected the same way by a one-time cookie
whose value the form repeats (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import Depends, Request, Response

from app.api.deps import StoreDep, TokenCacheDep
from app.core.errors import NotAuthenticated, PermissionDenied
from app.db.models import User
from app.vocabulary.accounts import TokenKind

SESSION_COOKIE: Final = "wk_session"
SIGN_IN_COOKIE: Final = "wk_sign_in"
CSRF_FIELD: Final = "csrf"
SIGN_IN_FORM_SECONDS: Final = 3600
_CSRF_PURPOSE: Final = b"watchkeeper page forms"


def csrf_token(session_token: str) -> str:
    """The CSRF token of the session whose cookie holds ``session_token``."""
    return hmac.new(session_token.encode(), _CSRF_PURPOSE, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The person a page is for, their session and the token their forms must carry."""

    user: User
    token_id: int
    expires_at: datetime | None
    csrf: str

    @property
    def is_staff(self) -> bool:
        return self.user.role.is_staff


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _cookie(request: Request, path: str) -> dict[str, Any]:
    """What every cookie of ours is, set or cleared: out of scripts' reach, sent on
    same-site visits, only over HTTPS when the page came over it."""
    return {"httponly": True, "samesite": "lax", "secure": _is_https(request), "path": path}


def set_session_cookie(request: Request, response: Response, token: str, seconds: int) -> None:
    """Hands the browser its session."""
    response.set_cookie(SESSION_COOKIE, token, max_age=seconds, **_cookie(request, "/"))


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, **_cookie(request, "/"))


def new_sign_in_nonce() -> str:
    """A fresh value for one sign-in form."""
    return secrets.token_urlsafe(32)


def set_sign_in_cookie(request: Request, response: Response, nonce: str) -> None:
    """Sets the cookie the sign-in form's ``nonce`` must match."""
    response.set_cookie(
        SIGN_IN_COOKIE, nonce, max_age=SIGN_IN_FORM_SECONDS, **_cookie(request, "/login")
    )


def clear_sign_in_nonce(request: Request, response: Response) -> None:
    response.delete_cookie(SIGN_IN_COOKIE, **_cookie(request, "/login"))


def _same(given: object, expected: str | None) -> bool:
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given, expected or "")


async def check_sign_in_form(request: Request) -> None:
    """403 unless the sign-in form repeats the value of its cookie."""
    form = await request.form()
    if not _same(form.get(CSRF_FIELD), request.cookies.get(SIGN_IN_COOKIE)):
        raise PermissionDenied(
            "The sign-in form has expired or did not come from this site; reload it"
        )


async def signed_in(request: Request, store: StoreDep, cache: TokenCacheDep) -> SignedIn:
    """The person whose live browser session the cookie holds; NotAuthenticated otherwise."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise NotAuthenticated()
    bearer = await cache.bearer(store, token)
    if bearer.kind is not TokenKind.BROWSER:
        raise NotAuthenticated()
    return SignedIn(bearer.user, bearer.token_id, bearer.expires_at, csrf_token(token))


Visitor = Annotated[SignedIn, Depends(signed_in)]


async def staff_visitor(visitor: Visitor) -> SignedIn:
    """Developers and admins only."""
    if not visitor.is_staff:
        raise PermissionDenied("This page is for developers and admins")
    return visitor


async def form_sender(request: Request, visitor: Visitor) -> SignedIn:
    """The signed-in sender of a form that carries their session's CSRF token; 403 if not."""
    form = await request.form()
    if not _same(form.get(CSRF_FIELD), visitor.csrf):
        raise PermissionDenied("The form's CSRF token is missing or wrong; reload the page")
    return visitor


Sender = Annotated[SignedIn, Depends(form_sender)]


async def staff_sender(sender: Sender) -> SignedIn:
    """A form from a developer or an admin."""
    if not sender.is_staff:
        raise PermissionDenied("Only developers and admins may do this")
    return sender


StaffVisitor = Annotated[SignedIn, Depends(staff_visitor)]
StaffSender = Annotated[SignedIn, Depends(staff_sender)]
