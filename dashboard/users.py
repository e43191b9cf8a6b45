"""Dashboard users and roles, kept in their own SQLite file.

Users live apart from the message store so that login works the same with
the embedded store and with Elasticsearch.  Passwords are hashed with
argon2id (argon2-cffi); the hash is never shown or logged.  Every call opens
its own short connection, so several worker processes can share the file.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

#: Roles, least to most powerful.  leader is read-only.
ROLES = ("leader", "press", "staff", "admin")
#: Roles that may store labels (topic/urgency corrections, rumour reviews).
LABEL_ROLES = frozenset({"press", "staff", "admin"})
#: Roles that may add or expire alert silences.
SILENCE_ROLES = frozenset({"staff", "admin"})

ROLE_NAMES = {"leader": "领导", "press": "新闻办", "staff": "值班人员", "admin": "管理员"}

_NAME_RE = re.compile(r"^[\w.@-]{1,64}$")
MIN_PASSWORD = 8
LOCK_SECONDS = 15 * 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    locked_until REAL NOT NULL DEFAULT 0
);
"""


class UserError(ValueError):
    """A user operation that cannot be done (unknown user, bad role, weak password)."""


@dataclass(frozen=True, slots=True)
class User:
    """A dashboard user as flask-login sees it."""

    username: str
    role: str
    #: A slice of the password hash: changing the password ends old sessions.
    token: str

    # flask-login's user protocol
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return f"{self.username}|{self.token}"

    @property
    def can_label(self) -> bool:
        return self.role in LABEL_ROLES

    @property
    def can_silence(self) -> bool:
        return self.role in SILENCE_ROLES


class UserStore:
    """Users and roles in one SQLite file."""

    def __init__(self, path: str | Path, max_failures: int = 5) -> None:
        self.path = Path(path)
        self.max_failures = max_failures
        self._hasher = PasswordHasher()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    # -- management (the `govpulse user` commands) --------------------------
    def add(self, username: str, password: str, role: str) -> User:
        """Create a user; raise UserError if the name exists or input is invalid."""
        _check_name(username)
        _check_role(role)
        _check_password(password)
        digest = self._hasher.hash(password)
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO users (username, password_hash, role, created_at) VALUES (?,?,?,?)",
                    (username, digest, role, datetime.now(UTC).isoformat(timespec="seconds")),
                )
        except sqlite3.IntegrityError:
            raise UserError(f"user {username!r} already exists") from None
        return User(username, role, _token(digest))

    def remove(self, username: str) -> None:
        with self._connect() as db:
            cur = db.execute("DELETE FROM users WHERE username = ?", (username,))
        if cur.rowcount == 0:
            raise UserError(f"no user {username!r}")

    def set_password(self, username: str, password: str) -> None:
        """Change a password; existing sessions of that user stop working."""
        _check_password(password)
        digest = self._hasher.hash(password)
        with self._connect() as db:
            cur = db.execute(
                "UPDATE users SET password_hash = ?, failures = 0, locked_until = 0 "
                "WHERE username = ?",
                (digest, username),
            )
        if cur.rowcount == 0:
            raise UserError(f"no user {username!r}")

    def set_role(self, username: str, role: str) -> None:
        _check_role(role)
        with self._connect() as db:
            cur = db.execute("UPDATE users SET role = ? WHERE username = ?", (role, username))
        if cur.rowcount == 0:
            raise UserError(f"no user {username!r}")

    def list(self) -> list[tuple[str, str, str]]:
        """(username, role, created_at) for every user, by name."""
        with self._connect() as db:
            return list(
                db.execute("SELECT username, role, created_at FROM users ORDER BY username")
            )

    # -- login ----------------------------------------------------------------
    def authenticate(self, username: str, password: str, now: float | None = None) -> User | None:
        """The user if the password is right and the name is not locked, else None.

        Repeated failures lock the name for a while so passwords cannot be
        guessed online; the answer never says which part was wrong.
        """
        now = time.time() if now is None else now
        with self._connect() as db:
            row = db.execute(
                "SELECT password_hash, role, failures, locked_until FROM users WHERE username = ?",
                (username,),
            ).fetchone()
            if row is None:
                # Hash anyway so timing does not reveal which names exist.
                self._hasher.hash(password or "x")
                return None
            digest, role, failures, locked_until = row
            if locked_until > now:
                return None
            try:
                self._hasher.verify(digest, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                failures += 1
                locked = now + LOCK_SECONDS if failures >= self.max_failures else 0
                db.execute(
                    "UPDATE users SET failures = ?, locked_until = ? WHERE username = ?",
                    (0 if locked else failures, locked, username),
                )
                return None
            if self._hasher.check_needs_rehash(digest):
                digest = self._hasher.hash(password)
                db.execute(
                    "UPDATE users SET password_hash = ? WHERE username = ?", (digest, username)
                )
            db.execute(
                "UPDATE users SET failures = 0, locked_until = 0 WHERE username = ?", (username,)
            )
        return User(username, role, _token(digest))

    def load(self, session_id: str) -> User | None:
        """The user for a session id from `User.get_id`, or None if stale."""
        username, _, token = session_id.partition("|")
        with self._connect() as db:
            row = db.execute(
                "SELECT password_hash, role FROM users WHERE username = ?", (username,)
            ).fetchone()
        if row is None or _token(row[0]) != token:
            return None
        return User(username, row[1], token)


def _token(digest: str) -> str:
    return digest[-16:]


def _check_name(username: str) -> None:
    if not _NAME_RE.match(username or ""):
        raise UserError("user name: 1-64 letters, digits or . _ @ -")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role {role!r} is not one of: {', '.join(ROLES)}")


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"password must have at least {MIN_PASSWORD} characters")
