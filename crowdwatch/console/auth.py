"""Console access: password hashing, roles and the rule of who may change what.

Passwords are kept only as salted scrypt hashes (``scrypt$n$r$p$salt$hash``, base64 parts), so a
copy of the store never reveals them. Two roles: ``operator`` (watch, acknowledge, change
settings) and ``viewer`` (watch only).

Example:
    >>> stored = hash_password("s3cret", cost=2**10)
    >>> stored.startswith("scrypt$")
    True
    >>> verify_password("s3cret", stored), verify_password("guess", stored)
    (True, False)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from crowdwatch.errors import CrowdwatchError

ROLES: tuple[str, ...] = ("operator", "viewer")
CHANGING_ROLES: frozenset[str] = frozenset({"operator"})

# scrypt cost: 2**14 takes ~30 ms here; strong enough for an operator console's logins.
DEFAULT_COST = 2**14
_BLOCK_SIZE = 8
_PARALLELISM = 1
_SALT_BYTES = 16
_HASH_BYTES = 32


class AccessDenied(CrowdwatchError):
    """A login failed or a user tried something their role does not allow."""


@dataclass(frozen=True)
class ConsoleUser:
    """Who is using the console and what they may do.

    ``authenticated`` is False for the open console (no users configured), where everybody may
    act and names themselves when they acknowledge an alert.
    """

    name: str
    role: str
    authenticated: bool = True

    @property
    def can_change(self) -> bool:
        """True when the user may acknowledge alerts and change settings."""
        return self.role in CHANGING_ROLES


OPEN_ACCESS = ConsoleUser(name="", role="operator", authenticated=False)


def hash_password(password: str, cost: int = DEFAULT_COST) -> str:
    """A salted scrypt hash of ``password`` in the self-describing ``scrypt$...`` form."""
    if not password:
        raise ValueError("a password must not be empty")
    if cost < 2 or cost & (cost - 1):
        raise ValueError(f"scrypt cost must be a power of two of at least 2, got {cost}")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, cost, _BLOCK_SIZE, _PARALLELISM)
    return "$".join(
        ["scrypt", str(cost), str(_BLOCK_SIZE), str(_PARALLELISM), _b64(salt), _b64(digest)]
    )


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches a hash made by :func:`hash_password`.

    A malformed stored hash raises ``ValueError`` (it is a broken store, not a wrong password).
    """
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("stored password hash is not in the 'scrypt$n$r$p$salt$hash' form")
    cost, block, parallel = (int(part) for part in parts[1:4])
    salt, expected = _unb64(parts[4]), _unb64(parts[5])
    digest = _scrypt(password, salt, cost, block, parallel, len(expected))
    return hmac.compare_digest(digest, expected)


def check_role(role: str) -> str:
    """``role`` when it is known, else a ``ValueError`` naming the known roles."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of: {', '.join(ROLES)}")
    return role


def require_change_right(user: ConsoleUser, action: str) -> None:
    """Raise :class:`AccessDenied` when ``user`` may not perform ``action`` (a change)."""
    if not user.can_change:
        raise AccessDenied(f"{user.name or 'this user'} ({user.role}) may not {action}")


def _scrypt(
    password: str, salt: bytes, cost: int, block: int, parallel: int, size: int = _HASH_BYTES
) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=cost,
        r=block,
        p=parallel,
        maxmem=256 * cost * block + 1024 * 1024,
        dklen=size,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


# Serving a store without users (everybody an operator) beyond this machine needs this set to 1
# (or ``crowdwatch console --allow-open``).
ALLOW_OPEN_ENV = "CROWDWATCH_ALLOW_OPEN_CONSOLE"


def is_loopback(address: object) -> bool:
    """True for ``localhost`` and loopback IPs; False for every-interface (None, ``0.0.0.0``,
    ``::``), other addresses and anything unknown."""
    import ipaddress

    if not isinstance(address, str) or not address.strip():
        return False
    text = address.strip().strip("[]")
    if text.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def open_console_refusal(server_address: object, visitor: object, *, allowed: bool) -> str | None:
    """Why an open (user-less) store must not be served to this visitor, or None.

    An open store gives every visitor operator rights, so it is served only where nobody else
    can reach it: on a loopback address, or to a visitor on this machine, unless ``allowed``.
    """
    if allowed or is_loopback(server_address) or is_loopback(visitor):
        return None
    where = "every interface" if not server_address else f"address {server_address}"
    return (
        f"this store has no users, so every visitor would be an operator, and the console "
        f"listens on {where}. Add a user (`crowdwatch user NAME --store ...`), serve on "
        f"localhost (`--server.address 127.0.0.1`), or allow it explicitly with "
        f"{ALLOW_OPEN_ENV}=1 (`crowdwatch console --allow-open`)"
    )
