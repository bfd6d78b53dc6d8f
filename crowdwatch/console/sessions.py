"""Console sessions that survive a browser reload: a signed, expiring token in a cookie.

The token names the user and its expiry and is signed (HMAC-SHA256) with a secret kept beside
the store (``console-secret``, readable by its owner only) or given in
``$CROWDWATCH_CONSOLE_SECRET``. The signature also covers the user's stored password hash, so
changing a password ends every session of that user; removing or demoting a user acts at once
because roles are read from the store on every run.

Example:
    >>> token = make_token("maria", "scrypt$x", b"k" * 32, now=1000.0, lifetime_s=60)
    >>> read_token(token, lambda name: "scrypt$x", b"k" * 32, now=1030.0)
    'maria'
    >>> read_token(token, lambda name: "scrypt$x", b"k" * 32, now=1061.0) is None  # expired
    True
    >>> read_token(token, lambda name: "scrypt$changed", b"k" * 32, now=1030.0) is None
    True
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path

COOKIE = "crowdwatch_session"
SECRET_ENV = "CROWDWATCH_CONSOLE_SECRET"
SECRET_FILE = "console-secret"
LIFETIME_S = 12 * 3600.0  # one shift


def make_token(
    name: str, password_hash: str, secret: bytes, now: float | None = None,
    lifetime_s: float = LIFETIME_S,
) -> str:  # fmt: skip
    """A signed token for ``name`` valid for ``lifetime_s`` from ``now``."""
    expires = int((time.time() if now is None else now) + lifetime_s)
    user = base64.urlsafe_b64encode(name.encode("utf-8")).decode("ascii").rstrip("=")
    return f"{user}.{expires}.{_sign(secret, name, expires, password_hash)}"


def read_token(
    token: str, password_hash_of: Callable[[str], str | None], secret: bytes,
    now: float | None = None,
) -> str | None:  # fmt: skip
    """The user name of a valid, unexpired token (None for anything else)."""
    try:
        user, expires_text, signature = token.split(".")
        name = base64.urlsafe_b64decode(user + "=" * (-len(user) % 4)).decode("utf-8")
        expires = int(expires_text)
    except (ValueError, UnicodeDecodeError):
        return None
    if expires < (time.time() if now is None else now):
        return None
    stored = password_hash_of(name)
    if stored is None:
        return None
    expected = _sign(secret, name, expires, stored)
    return name if hmac.compare_digest(expected, signature) else None


def load_secret(folder: Path | None, environ: Mapping[str, str] = os.environ) -> bytes:
    """The signing secret: ``$CROWDWATCH_CONSOLE_SECRET``, else ``console-secret`` beside the
    store (created on first use, owner-only), else a secret of this server process (sessions
    then survive reloads but not a restart)."""
    given = environ.get(SECRET_ENV)
    if given:
        return given.encode("utf-8")
    if folder is None:
        return _PROCESS_SECRET
    path = folder / SECRET_FILE
    try:
        if not path.exists():
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:  # another server process made it just now
                pass
            else:
                with os.fdopen(descriptor, "w") as handle:
                    handle.write(secrets.token_hex(32))
        return path.read_text("ascii").strip().encode("ascii")
    except (OSError, UnicodeDecodeError):
        return _PROCESS_SECRET


_PROCESS_SECRET = secrets.token_bytes(32)


def _sign(secret: bytes, name: str, expires: int, password_hash: str) -> str:
    message = f"{name}\n{expires}\n{password_hash}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")
