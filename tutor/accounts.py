"""User accounts for the web UI: roles and password hashing with scrypt (a slow, memory-hard KDF).

A stored hash reads ``scrypt$n=16384,r=8,p=1$<salt b64>$<hash b64>``: the parameters travel with
the hash, so they can be raised later without breaking old accounts (``needs_rehash``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Literal, get_args

from tutor.errors import InputError

Role = Literal["teacher", "student"]
ROLES: tuple[str, ...] = get_args(Role)

# ~16 MiB and ~50 ms per hash on a laptop core; tests may pass a smaller n.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,63}$")


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def check_password_policy(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_CHARS:
        raise InputError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise InputError(f"the password must have at most {MAX_PASSWORD_CHARS} characters")


def check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise InputError(
            f"user name {username!r} is not valid: use 1-64 letters, digits, '_', '.', '@' or '-', "
            "starting with a letter or digit"
        )
    return username


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise InputError(f"role {role!r} is not known; use one of {', '.join(ROLES)}")
    return role  # type: ignore[return-value]


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash of ``password`` (checks the password policy first)."""
    check_password_policy(password)
    salt = secrets.token_bytes(SALT_BYTES)
    dk = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + 2**20,
        dklen=HASH_BYTES,
    )
    return f"scrypt$n={n},r={r},p={p}${_b64(salt)}${_b64(dk)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    try:
        scheme, params, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return None
        kv = dict(part.split("=") for part in params.split(","))
        return (
            int(kv["n"]),
            int(kv["r"]),
            int(kv["p"]),
            base64.b64decode(salt_b64),
            base64.b64decode(hash_b64),
        )
    except (ValueError, KeyError):
        return None


def verify_password(password: str, stored: str) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    parsed = _parse(stored or "")
    if parsed is None or not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
        return False
    n, r, p, salt, expected = parsed
    dk = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=256 * n * r + 2**20,
        dklen=len(expected),
    )
    return hmac.compare_digest(dk, expected)


def needs_rehash(stored: str, *, n: int = SCRYPT_N) -> bool:
    parsed = _parse(stored or "")
    return parsed is None or parsed[0] < n


# A hash to verify against when the user does not exist, so both cases take as long.
_DUMMY: dict[int, str] = {}


def dummy_verify(password: str, *, n: int = SCRYPT_N) -> bool:
    if n not in _DUMMY:
        _DUMMY[n] = hash_password("x" * MIN_PASSWORD_CHARS, n=n)
    verify_password(password if isinstance(password, str) else "", _DUMMY[n])
    return False
