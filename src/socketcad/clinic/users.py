"""Who may do what: clinics, their users and roles, signed-in sessions, and the rule that a user sees only the
cases of their own clinic. The web application asks these functions; it keeps no rule of its own.

Passwords are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second recommended setting). A session is
a random token in the browser's cookie; the store keeps only its SHA-256, so a copy of the database signs nobody in.
Each session has its own CSRF token, which every write must carry.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from socketcad.clinic.cases import audit
from socketcad.clinic.models import Case, Clinic, User, WebSession
from socketcad.clinic.store import Store
from socketcad.errors import AccessError, InputError, UnknownError

__all__ = ["PERMISSIONS", "ROLES", "SESSION_HOURS", "Account", "add_user", "case_access", "clinic_case_ids",
           "end_session", "permits", "session_account", "sign_in"]

# What each role may do. prosthetist: every step of their clinic's cases; technician: read designs and record
# fabrication; admin: the clinic's users (not its patients' records: an administrator need not see them).
PERMISSIONS = ("read", "write", "fabricate", "users")
ROLES: dict[str, frozenset[str]] = {
    "prosthetist": frozenset({"read", "write", "fabricate"}),
    "technician": frozenset({"read", "fabricate"}),
    "admin": frozenset({"users"}),
}
SESSION_HOURS = 12  # a working day: a browser left open overnight signs in again
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# Verified when a name is unknown, so that a wrong name takes as long as a wrong password (no user enumeration).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class Account(BaseModel):
    """A signed-in user as the application sees them."""

    username: str
    role: str
    clinic: str
    clinic_id: int
    csrf_token: str = ""  # of this session; empty outside a session


def permits(role: str, permission: str) -> bool:
    return permission in ROLES.get(role, frozenset())


def _check_user(username: str, password: str, role: str) -> None:
    if not (1 <= len(username) <= 64) or not username.isprintable() or username != username.strip():
        raise InputError("username: 1-64 printable characters, no spaces around it")
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of: {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD or len(password) > 1024:
        raise InputError(f"password: at least {MIN_PASSWORD} characters (and at most 1024)")


def add_user(store: Store, username: str, password: str, role: str, clinic: str, *, actor: str) -> Account:
    """Add a user to ``clinic`` (made if new). The first clinic of a store takes the cases made before the store
    had clinics (a clinic that used the command line alone keeps its cases when it starts the web application)."""
    _check_user(username, password, role)
    clinic = clinic.strip()
    if not (1 <= len(clinic) <= 100) or not clinic.isprintable():
        raise InputError("clinic: 1-100 printable characters")
    try:
        with store.transaction() as db:
            found = db.scalar(select(Clinic).where(Clinic.name == clinic))
            if found is None:
                first = db.scalar(select(Clinic.id).limit(1)) is None
                found = Clinic(name=clinic)
                db.add(found)
                db.flush()
                if first:
                    db.execute(update(Case).where(Case.clinic_id.is_(None)).values(clinic_id=found.id))
            user = User(clinic_id=found.id, username=username, password_hash=_hasher.hash(password), role=role,
                        active=True)
            db.add(user)
            db.flush()
            audit(db, "user.add", None, {"username": username, "role": role, "clinic": clinic}, actor)
    except IntegrityError:
        raise InputError(f"user {username!r} exists already: give another username") from None
    return Account(username=username, role=role, clinic=clinic, clinic_id=found.id)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(store: Store, username: str, password: str, now: datetime | None = None) -> tuple[str, Account]:
    """A new session for a user whose password matches: (the cookie's token, the account with the session's CSRF
    token). InputError with one message for any wrong name or password (it does not tell which)."""
    now = now or datetime.now(timezone.utc)
    with store.transaction() as db:
        user = db.scalar(select(User).where(User.username == username))
        try:
            _hasher.verify(user.password_hash if user is not None else _DUMMY_HASH, password)
            known = user is not None and user.active
        except (VerificationError, InvalidHashError):
            known = False
        if not known:
            raise InputError("username or password: not recognised; check both and sign in again")
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        db.execute(delete(WebSession).where(WebSession.expires_at < now))
        db.add(WebSession(token_hash=_token_hash(token), csrf_token=csrf, user_id=user.id,
                          expires_at=now + timedelta(hours=SESSION_HOURS)))
        audit(db, "user.sign_in", None, {"username": username}, username)
        return token, Account(username=user.username, role=user.role, clinic=user.clinic.name,
                              clinic_id=user.clinic_id, csrf_token=csrf)


def session_account(store: Store, token: str, now: datetime | None = None) -> Account | None:
    """The account signed in with ``token``; None if the token is unknown, expired or its user deactivated."""
    now = now or datetime.now(timezone.utc)
    if not token or len(token) > 100:
        return None
    with store.transaction() as db:
        session = db.scalar(select(WebSession).where(WebSession.token_hash == _token_hash(token)))
        if session is None or _aware(session.expires_at) < now or not session.user.active:
            return None
        user = session.user
        return Account(username=user.username, role=user.role, clinic=user.clinic.name, clinic_id=user.clinic_id,
                       csrf_token=session.csrf_token)


def end_session(store: Store, token: str) -> None:
    """Sign out: the session's token stops working."""
    with store.transaction() as db:
        db.execute(delete(WebSession).where(WebSession.token_hash == _token_hash(token)))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)  # SQLite hands back naive UTC


def clinic_case_ids(db: Session, clinic_id: int) -> set[int]:
    return set(db.scalars(select(Case.id).where(Case.clinic_id == clinic_id)))


def case_access(store: Store, account: Account, reference: str, permission: str, revision: int | None = None) -> None:
    """Refuse unless ``account``'s role permits ``permission`` and the case is one of its clinic's (and
    ``revision``, if given, one of the case's). A case of another clinic is answered as a missing one: its
    reference is not confirmed to exist."""
    if not permits(account.role, permission):
        raise AccessError(f"a {account.role} may not {permission} case records")
    with store.transaction() as db:
        case = db.scalar(select(Case).where(Case.reference == reference))
        if case is None or case.clinic_id != account.clinic_id:
            raise UnknownError(f"no case {reference!r} in clinic {account.clinic!r}")
        if revision is not None and revision not in {r.id for r in case.revisions}:
            raise UnknownError(f"revision {revision} is not a revision of case {reference!r}")
