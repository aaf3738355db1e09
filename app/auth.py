"""Who is calling: bearer JWTs for people and scripts, HMAC service tokens for workers,
hashed passwords for the Gradio login, and signed links for ``/files``.

Off by default on localhost. ``STUDIO_JWT_SECRET`` turns REST authentication on;
``STUDIO_AUTH_USERS`` / ``STUDIO_AUTH_USERS_FILE`` turn the UI login on. HS256 is the only
accepted algorithm, so ``alg: none`` and RS/HS confusion are refused by construction.

Token claims: ``user_id``, ``email``, ``roles``, ``exp``, ``iat``.
Service token (workers on other machines): ``X-Service-Token: {service}:{unix_ts}:{hex hmac}`` where the
HMAC-SHA256 key is ``STUDIO_SERVICE_SECRET`` and the message ``{service}:{unix_ts}``; valid
for 5 minutes either side.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt

from models.errors import StudioError

SERVICE_TOKEN_WINDOW = 300
PBKDF2_ITERATIONS = 240_000


class AuthError(StudioError):
    kind = "auth"
    default_code = "AUTH_REQUIRED"


class Forbidden(StudioError):
    kind = "forbidden"
    default_code = "AUTH_FORBIDDEN"


@dataclass(frozen=True)
class Principal:
    user_id: str
    email: str | None = None
    roles: tuple[str, ...] = field(default_factory=tuple)
    kind: str = "user"  # user | service | anonymous

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles or self.kind == "service"

    def owns(self, owner: str | None) -> bool:
        """Whether this principal may see a record owned by ``owner``."""
        return self.is_admin or self.kind == "anonymous" or owner == self.user_id


ANONYMOUS = Principal("anonymous", kind="anonymous", roles=("admin",))


# ------------------------------------------------------------------------------ JWT


def issue_token(secret: str, user_id: str, *, email: str | None = None,
                roles: list[str] | None = None, ttl: int = 3600,
                now: int | None = None) -> str:
    issued = int(time.time() if now is None else now)
    claims = {"user_id": user_id, "email": email, "roles": roles or ["user"],
              "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["exp", "iat", "user_id"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("The token has expired.", code="AUTH_TOKEN_EXPIRED",
                        message_ja="トークンの有効期限が切れています。") from None
    except jwt.PyJWTError:
        raise AuthError("The token is not valid.", code="AUTH_TOKEN_INVALID",
                        message_ja="トークンが無効です。") from None
    roles = claims.get("roles") or []
    if not isinstance(roles, list) or not isinstance(claims["user_id"], str):
        raise AuthError("The token's claims are malformed.", code="AUTH_TOKEN_INVALID",
                        message_ja="トークンのクレームが不正です。")
    return Principal(claims["user_id"], claims.get("email"), tuple(map(str, roles)))


def token_expires_at(token: str) -> float:
    """The ``exp`` of a token :func:`verify_token` has accepted (unix time)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return float(claims["exp"])


# --------------------------------------------------------------------- service tokens


def _service_mac(secret: str, service: str, stamp: str) -> str:
    return hmac.new(secret.encode(), f"{service}:{stamp}".encode(), hashlib.sha256).hexdigest()


def issue_service_token(secret: str, service: str, now: float | None = None) -> str:
    stamp = str(int(time.time() if now is None else now))
    return f"{service}:{stamp}:{_service_mac(secret, service, stamp)}"


def verify_service_token(secret: str, token: str, now: float | None = None) -> Principal:
    parts = token.split(":")
    if len(parts) != 3 or not parts[1].isdigit():
        raise AuthError("Malformed service token.", code="AUTH_SERVICE_TOKEN_INVALID",
                        message_ja="サービストークンの形式が不正です。")
    service, stamp, mac = parts
    if abs((time.time() if now is None else now) - int(stamp)) > SERVICE_TOKEN_WINDOW:
        raise AuthError("The service token is outside its 5-minute window.",
                        code="AUTH_SERVICE_TOKEN_EXPIRED",
                        message_ja="サービストークンの有効時間（5分）を過ぎています。")
    if not hmac.compare_digest(mac, _service_mac(secret, service, stamp)):
        raise AuthError("The service token is not valid.", code="AUTH_SERVICE_TOKEN_INVALID",
                        message_ja="サービストークンが無効です。")
    return Principal(f"service:{service}", roles=("service",), kind="service")


# -------------------------------------------------------------------------- passwords


def hash_password(password: str, *, salt: bytes | None = None,
                  iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return (f"pbkdf2_sha256${iterations}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                     int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def load_users(inline: str | None, path: Path | None) -> dict[str, str]:
    """``user:hash`` pairs from ``STUDIO_AUTH_USERS`` (comma-separated) and/or a file with
    one pair a line. Only hashed passwords (``pbkdf2_sha256$...``) are accepted."""
    lines: list[str] = []
    if inline:
        lines += inline.split(",")
    if path is not None:
        lines += Path(path).read_text(encoding="utf-8").splitlines()
    users: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, stored = line.partition(":")
        if not sep or not stored.startswith("pbkdf2_sha256$"):
            raise ValueError(f"user {name!r}: password must be a pbkdf2_sha256 hash "
                             "(make one with: python -m app.auth hash-password)")
        users[name.strip()] = stored.strip()
    return users


# ------------------------------------------------------------------------ file links


def sign_key(secret: str, key: str, expires: int) -> str:
    return hmac.new(secret.encode(), f"files:{key}:{expires}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def verify_file_signature(secret: str, key: str, expires: str | None, sig: str | None,
                          now: float | None = None) -> bool:
    if not expires or not sig or not expires.isdigit():
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(sig, sign_key(secret, key, int(expires)))


def main(argv: list[str] | None = None) -> int:
    """``python -m app.auth hash-password`` (reads the password from stdin) or
    ``python -m app.auth token USER_ID [--admin]`` (needs STUDIO_JWT_SECRET)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["hash-password"]:
        password = sys.stdin.readline().rstrip("\n")
        print(hash_password(password))
        return 0
    if args[:1] == ["token"] and len(args) >= 2:
        from app.config import load_settings

        secret = load_settings().jwt_secret
        if not secret:
            print("STUDIO_JWT_SECRET is not set", file=sys.stderr)
            return 2
        roles = ["user", "admin"] if "--admin" in args else ["user"]
        print(issue_token(secret, args[1], roles=roles))
        return 0
    print("usage: python -m app.auth hash-password | token USER_ID [--admin]", file=sys.stderr)
    return 2


def principal_dict(p: Principal) -> dict[str, Any]:
    return {"user_id": p.user_id, "email": p.email, "roles": list(p.roles), "kind": p.kind}


if __name__ == "__main__":
    raise SystemExit(main())
