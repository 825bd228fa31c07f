"""Who may do what in the console: roles, argon2id password hashes, session tokens and CSRF tokens.

A session cookie holds a random token (256 bits); the database keeps only its SHA-256, with the session's
CSRF token (the synchronizer-token pattern: every form carries it, htmx sends it as ``X-CSRF-Token``).
The login form, before any session, uses a double-submit cookie instead."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# Role → what it lets a person do. A page or action outside a person's roles answers 403.
ROLES: dict[str, str] = {
    "analyst": "review flagged transactions: take cases, decide fraud / legitimate / escalate",
    "document_reviewer": "correct the class and entities of documents waiting for a person",
    "product_editor": "approve, edit or reject product description drafts",
    "rule_author": "draft transaction rules and backtest them",
    "rule_approver": "backtest and promote (or reject) rule drafts written by someone else",
    "admin": "manage console users and read the audit log",
}

_hasher = PasswordHasher()  # argon2id, RFC 9106's low-memory profile (t=3, m=64 MiB, p=4)
# Verified when the user does not exist, so that an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class PasswordPolicyError(ValueError):
    pass


def check_roles(roles: list[str]) -> list[str]:
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"unknown role(s) {', '.join(unknown)}: roles are {', '.join(ROLES)}")
    return sorted(set(roles))


def hash_password(password: str, min_chars: int) -> str:
    if len(password) < min_chars:
        raise PasswordPolicyError(f"a password needs at least {min_chars} characters")
    if password.strip() != password or not password.isprintable():
        raise PasswordPolicyError("a password cannot start or end with spaces or hold control characters")
    return _hasher.hash(password)


@dataclass(frozen=True)
class Verified:
    ok: bool
    rehash: str | None = None  # the same password hashed with today's parameters, to store


def verify_password(stored_hash: str | None, password: str) -> Verified:
    try:
        _hasher.verify(stored_hash or _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return Verified(False)
    if stored_hash is None:
        return Verified(False)
    return Verified(True, _hasher.hash(password) if _hasher.check_needs_rehash(stored_hash) else None)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_token(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


@dataclass(frozen=True)
class Viewer:
    """The person behind a request: their user row and their session's CSRF token."""

    username: str
    roles: frozenset[str]
    csrf_token: str
    session_token_hash: str

    @classmethod
    def of(cls, session: dict[str, Any], user: dict[str, Any]) -> Viewer:
        return cls(user["username"], frozenset(user["roles"]), session["csrf_token"], session["token_hash"])

    def can(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))
