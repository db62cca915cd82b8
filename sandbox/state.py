"""In-memory, thread-safe state of the sandbox Apple ID (and, beside it, the networks' and
the VK API's)."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sandbox.keys import SigningKey, b64url
from sandbox.networks.store import NetworkStore
from sandbox.okapi.model import OkApiState
from sandbox.telegram_bot.model import TelegramBotState
from sandbox.vkapi.model import VkApiState

APPLE_ISSUER = "https://appleid.apple.com"
CODE_LIFETIME = 300
ACCESS_TOKEN_LIFETIME = 3600
ID_TOKEN_LIFETIME = 600
MAX_CLIENT_SECRET_LIFETIME = 15_777_000
# Tolerated clock skew for a client secret's `iat` lying slightly in the future.
CLIENT_SECRET_IAT_SKEW = 60

SCOPES = frozenset({"name", "email"})
FAULT_KINDS = frozenset(
    {"bad_signature", "wrong_aud", "wrong_nonce", "expired", "wrong_iss", "unknown_kid"}
)
NOTIFICATION_TYPES = ("email-disabled", "email-enabled", "consent-revoked", "account-delete")
EMAIL_EVENTS = frozenset({"email-disabled", "email-enabled"})
# Events after which Apple treats the next sign-in as a first one (and revokes the grant).
FORGETTING_EVENTS = frozenset({"consent-revoked", "account-delete", "account-deleted"})

WRONG_AUDIENCE = "com.example.sandbox.not-your-client"
WRONG_ISSUER = "https://appleid.sandbox.invalid"

DEFAULT_PERSONS: tuple[dict[str, Any], ...] = (
    {
        "sub": "001001.anna",
        "first_name": "Anna",
        "last_name": "Ivanova",
        "email": "anna.ivanova@example.com",
        "is_private_email": False,
        "is_private_email_format": "bool",
        "networks": {
            "vk": {"user_id": 1001001, "email": "anna.ivanova@example.com"},
            "ok": {"uid": "570001001", "email": "anna.ivanova@ok.ru"},
            "mailru": {"id": "17238001001", "email": "anna@mail.ru"},
            "yandex": {
                "id": "1130001001",
                "login": "anna.ivanova",
                "default_email": "anna.ivanova@yandex.ru",
            },
            "telegram": {"id": 7001001, "username": "anna_ivanova"},
            "google": {
                "sub": "100000000000000001001",
                "email": "anna.ivanova@gmail.com",
                "email_verified": True,
            },
        },
    },
    {
        "sub": "001002.boris",
        "first_name": "Boris",
        "last_name": "Petrov",
        "email": "b7x2kq9m@privaterelay.appleid.com",
        "is_private_email": True,
        "is_private_email_format": "string",
        "networks": {
            "vk": {"user_id": 1001002, "email": "boris.petrov@example.net"},
            "ok": {"uid": "570001002", "email": "boris.petrov@ok.ru"},
            "mailru": {"id": "17238001002", "email": "boris@mail.ru"},
            "yandex": {
                "id": "1130001002",
                "login": "boris.petrov",
                "default_email": "boris.petrov@yandex.ru",
            },
            "telegram": {"id": 7001002, "username": "boris_petrov"},
            "google": {
                "sub": "100000000000000001002",
                "email": "boris.petrov@gmail.com",
                "email_verified": False,
            },
        },
    },
    {
        "sub": "001003.chen",
        "first_name": "Chen",
        "last_name": "Li",
        "email": "chen.li@example.com",
        "is_private_email": False,
        "is_private_email_format": "string",
        "networks": {
            "vk": {"user_id": 1001003, "email": "chen.li@example.com"},
            "ok": {"uid": "570001003", "email": "chen.li@ok.ru"},
            "mailru": {"id": "17238001003", "email": "chen@mail.ru"},
            "yandex": {
                "id": "1130001003",
                "login": "chen.li",
                "default_email": "chen.li@yandex.ru",
            },
            "telegram": {"id": 7001003, "username": "chen_li"},
            "google": {
                "sub": "100000000000000001003",
                "email": "chen.li@gmail.com",
                "email_verified": True,
            },
        },
    },
)

_PERSON_KEYS = ("sub", "first_name", "last_name", "email")


class OAuthError(Exception):
    """An OAuth error, answered as HTTP 400 ``{"error": error}``."""

    def __init__(self, error: str, description: str = "") -> None:
        super().__init__(description or error)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class AppleClient:
    """A registered Services ID (the product, as Apple knows it)."""

    client_id: str
    team_id: str
    key_id: str
    public_key: ec.EllipticCurvePublicKey
    redirect_uris: tuple[str, ...]
    notification_url: str | None


@dataclass
class AuthorizationCode:
    """A code issued at consent; single use."""

    code: str
    client_id: str
    redirect_uri: str
    sub: str
    scope: frozenset[str]
    nonce: str | None
    auth_time: int
    expires_at: float
    grant_id: str | None = None


@dataclass
class IssuedToken:
    """A refresh or access token; tokens of one code exchange share a grant_id."""

    value: str
    kind: str
    client_id: str
    sub: str
    grant_id: str
    scope: frozenset[str]
    auth_time: int
    expires_at: float | None
    invalidated: bool = False


class SandboxState:
    """Everything the sandbox remembers; every method takes the lock."""

    def __init__(
        self,
        *,
        issuer: str = APPLE_ISSUER,
        persons: list[dict] | None = None,
        oidc_issuers: dict[str, str] | None = None,
    ) -> None:
        self.issuer = issuer
        self.networks = NetworkStore(issuers=oidc_issuers)
        source: Iterable[dict[str, Any]] = DEFAULT_PERSONS if persons is None else persons
        self.persons: list[dict[str, Any]] = [_normalize_person(p) for p in source]
        # VK API data; reset() keeps it (vk.clear() forgets it).
        self.vk = VkApiState(persons=lambda: self.persons)
        # Telegram Bot API data; reset() keeps it (telegram.clear() forgets it).
        self.telegram = TelegramBotState(persons=lambda: self.persons)
        # OK API data, kept by reset() the same way (ok.clear() forgets it).
        self.ok = OkApiState(persons=lambda: self.persons)
        self.lock = threading.RLock()
        self.clients: dict[str, AppleClient] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.revoked: list[str] = []
        self.authorized: set[tuple[str, str]] = set()
        self.signing_keys: list[SigningKey] = [SigningKey.generate()]
        self.pending_fault: str | None = None
        self._rogue_key: rsa.RSAPrivateKey | None = None

    # Persons and clients

    def person(self, sub: str) -> dict[str, Any] | None:
        """The person with this sub, if any."""
        return next((p for p in self.persons if p["sub"] == sub), None)

    def add_person(self, person: dict[str, Any]) -> dict[str, Any]:
        """Add a sandbox person (tests use it for look-alikes); returns the stored form."""
        normalized = _normalize_person(person)
        with self.lock:
            self.persons = [p for p in self.persons if p["sub"] != normalized["sub"]]
            self.persons.append(normalized)
        return normalized

    def remove_person(self, sub: str) -> None:
        with self.lock:
            self.persons = [p for p in self.persons if p["sub"] != sub]

    def register_apple_client(
        self,
        client_id: str,
        *,
        team_id: str,
        key_id: str,
        public_key_pem: str,
        redirect_uris: list[str],
        notification_url: str | None = None,
    ) -> None:
        """Register (or replace) a client with its ES256 public key and redirect URIs."""
        public_key = serialization.load_pem_public_key(public_key_pem.encode())
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise ValueError("public_key_pem must be an EC P-256 public key")
        if not client_id or not team_id or not key_id:
            raise ValueError("client_id, team_id and key_id must not be empty")
        if not redirect_uris or not all(isinstance(u, str) and u for u in redirect_uris):
            raise ValueError("redirect_uris must be a non-empty list of URLs")
        client = AppleClient(
            client_id=client_id,
            team_id=team_id,
            key_id=key_id,
            public_key=public_key,
            redirect_uris=tuple(redirect_uris),
            notification_url=notification_url,
        )
        with self.lock:
            self.clients[client_id] = client

    def get_client(self, client_id: str) -> AppleClient | None:
        """The registered client, if any."""
        with self.lock:
            return self.clients.get(client_id)

    def verify_client_secret(self, client_id: str, client_secret: str) -> AppleClient:
        """Check the ES256 client secret JWT exactly as Apple does; raise invalid_client."""
        client = self.get_client(client_id)
        if client is None:
            raise OAuthError("invalid_client", "unknown client_id")
        try:
            header = jwt.get_unverified_header(client_secret)
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_client", f"malformed client_secret: {exc}") from exc
        if header.get("alg") != "ES256" or header.get("kid") != client.key_id:
            raise OAuthError("invalid_client", "client_secret alg/kid mismatch")
        try:
            claims = jwt.decode(
                client_secret,
                client.public_key,
                algorithms=["ES256"],
                audience=self.issuer,
                issuer=client.team_id,
                options={
                    "require": ["iss", "sub", "aud", "iat", "exp"],
                    "strict_aud": True,
                    "verify_iat": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise OAuthError("invalid_client", f"client_secret rejected: {exc}") from exc
        if claims["sub"] != client_id:
            raise OAuthError("invalid_client", "client_secret sub is not the client_id")
        iat, exp = claims["iat"], claims["exp"]
        if not isinstance(iat, int | float) or not isinstance(exp, int | float):
            raise OAuthError("invalid_client", "client_secret iat/exp must be numbers")
        if iat > time.time() + CLIENT_SECRET_IAT_SKEW:
            raise OAuthError("invalid_client", "client_secret issued in the future")
        if exp - iat > MAX_CLIENT_SECRET_LIFETIME:
            raise OAuthError("invalid_client", "client_secret lives longer than 6 months")
        return client

    # Social networks (their state lives in self.networks)

    def register_oauth_client(
        self,
        network: str,
        client_id: str,
        *,
        client_secret: str | None,
        redirect_uris: list[str],
        extra: dict | None = None,
    ) -> None:
        """Register (or replace) a client of vkid, ok, mailru, yandex, telegram or google."""
        self.networks.register_client(
            network,
            client_id,
            client_secret=client_secret,
            redirect_uris=redirect_uris,
            extra=extra,
        )

    def inject_token_error(self, network: str, error: str) -> None:
        """Make the network's next token request answer 400 ``{"error": error}``."""
        self.networks.inject_token_error(network, error)

    def inject_oidc_fault(self, network: str, kind: str) -> None:
        """Make the next id_token of telegram or google faulty (one-shot)."""
        self.networks.inject_oidc_fault(network, kind)

    # Authorization

    def record_authorization(self, client_id: str, sub: str) -> bool:
        """Remember that sub authorized client_id; True if this is the first time."""
        with self.lock:
            first = (client_id, sub) not in self.authorized
            self.authorized.add((client_id, sub))
            return first

    def issue_code(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        sub: str,
        scope: Iterable[str],
        nonce: str | None,
    ) -> str:
        """Issue a single-use authorization code valid for five minutes."""
        now = time.time()
        code = f"c{secrets.token_hex(16)}.0.sbx.{secrets.token_urlsafe(24)}"
        with self.lock:
            self._prune_codes(now)
            self.codes[code] = AuthorizationCode(
                code=code,
                client_id=client_id,
                redirect_uri=redirect_uri,
                sub=sub,
                scope=frozenset(scope),
                nonce=nonce,
                auth_time=int(now),
                expires_at=now + CODE_LIFETIME,
            )
        return code

    # Token endpoint

    def exchange_code(self, client_id: str, code: str, redirect_uri: str) -> dict[str, Any]:
        """Redeem a code for tokens (grant_type=authorization_code)."""
        with self.lock:
            issued = self.codes.get(code)
            if issued is None or issued.expires_at <= time.time():
                raise OAuthError("invalid_grant", "unknown or expired code")
            if issued.client_id != client_id:
                raise OAuthError("invalid_grant", "code was issued to another client")
            if issued.grant_id is not None:
                # Replay: RFC 6749 section 4.1.2 says to revoke what the code produced.
                self._invalidate(lambda t: t.grant_id == issued.grant_id)
                raise OAuthError("invalid_grant", "code already used")
            if issued.redirect_uri != redirect_uri:
                raise OAuthError("invalid_grant", "redirect_uri differs from authorization")
            grant_id = secrets.token_hex(8)
            issued.grant_id = grant_id
            refresh = self._new_token("refresh_token", issued, grant_id)
            access = self._new_token("access_token", issued, grant_id)
            id_token = self._sign_id_token(
                client_id=client_id,
                sub=issued.sub,
                scope=issued.scope,
                auth_time=issued.auth_time,
                nonce=issued.nonce,
                access_token=access.value,
            )
            return {
                "access_token": access.value,
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "refresh_token": refresh.value,
                "id_token": id_token,
            }

    def refresh(self, client_id: str, refresh_token: str) -> dict[str, Any]:
        """Issue a new access token and id_token (grant_type=refresh_token)."""
        with self.lock:
            token = self.tokens.get(refresh_token)
            if token is None or token.kind != "refresh_token" or token.invalidated:
                raise OAuthError("invalid_grant", "unknown or revoked refresh_token")
            if token.client_id != client_id:
                raise OAuthError("invalid_grant", "refresh_token belongs to another client")
            access = self._new_token("access_token", token, token.grant_id)
            id_token = self._sign_id_token(
                client_id=client_id,
                sub=token.sub,
                scope=token.scope,
                auth_time=token.auth_time,
                nonce=None,
                access_token=access.value,
            )
            return {
                "access_token": access.value,
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_LIFETIME,
                "id_token": id_token,
            }

    def revoke(self, client_id: str, token: str, token_type_hint: str | None = None) -> bool:
        """Revoke a token of this client; True if it was known (unknown ones are ignored)."""
        with self.lock:
            issued = self.tokens.get(token)
            if issued is None or issued.client_id != client_id:
                return False
            if issued.kind == "refresh_token":
                # The whole grant goes, and Apple forgets the app for this user.
                self._invalidate(lambda t: t.grant_id == issued.grant_id)
                self.authorized.discard((client_id, issued.sub))
            else:
                issued.invalidated = True
            if token not in self.revoked:
                self.revoked.append(token)
            return True

    def revoked_tokens(self) -> list[str]:
        """Tokens revoked through the revoke endpoint, oldest first."""
        with self.lock:
            return list(self.revoked)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The public keys, as served at /auth/keys."""
        with self.lock:
            return {"keys": [key.jwk() for key in self.signing_keys]}

    # Faults

    def inject_fault(self, kind: str) -> None:
        """Make the next successful token response carry a faulty id_token."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        with self.lock:
            self.pending_fault = kind

    def clear_faults(self) -> None:
        """Drop any pending fault."""
        with self.lock:
            self.pending_fault = None

    # Notifications

    def sign_notification(
        self,
        client_id: str,
        sub: str,
        event_type: str,
        *,
        email: str | None = None,
        is_private_email: bool | str | None = None,
        bad_signature: bool = False,
        audience: str | None = None,
        jti: str | None = None,
    ) -> str:
        """Build a server-to-server notification JWS like Apple's."""
        event: dict[str, Any] = {
            "type": event_type,
            "sub": sub,
            "event_time": int(time.time() * 1000),
        }
        if event_type in EMAIL_EVENTS:
            person = self.person(sub)
            if email is None and person is not None:
                email = person["email"]
            if is_private_email is None:
                # Only relay addresses can be switched on and off.
                is_private_email = person["is_private_email"] if person is not None else True
            if email is not None:
                event["email"] = email
            event["is_private_email"] = _bool_string(is_private_email)
        claims = {
            "iss": self.issuer,
            "aud": audience if audience is not None else client_id,
            "iat": int(time.time()),
            "jti": jti if jti is not None else secrets.token_urlsafe(16),
            "events": json.dumps(event),
        }
        with self.lock:
            kid, key = self._current_key_for(bad_signature)
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

    def apply_notification_effects(self, client_id: str, sub: str, event_type: str) -> None:
        """What Apple does on its side when it sends this event."""
        if event_type not in FORGETTING_EVENTS:
            return
        with self.lock:
            self.authorized.discard((client_id, sub))
            self._invalidate(lambda t: t.client_id == client_id and t.sub == sub)

    def reset(self) -> None:
        """Forget codes, tokens, faults and authorizations; keep clients, persons, keys and
        the VK API's data (``vk.clear()`` forgets that)."""
        with self.lock:
            self.codes.clear()
            self.tokens.clear()
            self.revoked.clear()
            self.authorized.clear()
            self.pending_fault = None
        self.networks.reset()

    # Internals (callers hold the lock)

    def _prune_codes(self, now: float) -> None:
        for code in [c for c, issued in self.codes.items() if issued.expires_at <= now]:
            del self.codes[code]

    def _invalidate(self, predicate: Callable[[IssuedToken], bool]) -> None:
        for token in self.tokens.values():
            if predicate(token):
                token.invalidated = True

    def _new_token(
        self, kind: str, origin: AuthorizationCode | IssuedToken, grant_id: str
    ) -> IssuedToken:
        prefix = "r" if kind == "refresh_token" else "a"
        token = IssuedToken(
            value=f"{prefix}{secrets.token_hex(16)}.0.sbx.{secrets.token_urlsafe(24)}",
            kind=kind,
            client_id=origin.client_id,
            sub=origin.sub,
            grant_id=grant_id,
            scope=origin.scope,
            auth_time=origin.auth_time,
            expires_at=time.time() + ACCESS_TOKEN_LIFETIME if kind == "access_token" else None,
        )
        self.tokens[token.value] = token
        return token

    def _current_key_for(self, bad_signature: bool) -> tuple[str, rsa.RSAPrivateKey]:
        current = self.signing_keys[-1]
        if not bad_signature:
            return current.kid, current.private_key
        if self._rogue_key is None:
            self._rogue_key = SigningKey.generate().private_key
        return current.kid, self._rogue_key

    def _sign_id_token(
        self,
        *,
        client_id: str,
        sub: str,
        scope: frozenset[str],
        auth_time: int,
        nonce: str | None,
        access_token: str,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": client_id,
            "exp": now + ID_TOKEN_LIFETIME,
            "iat": now,
            "sub": sub,
            "at_hash": _at_hash(access_token),
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims["nonce_supported"] = True
        person = self.person(sub)
        if person is not None and "email" in scope:
            claims["email"] = person["email"]
            claims["email_verified"] = True
            private = bool(person["is_private_email"])
            string_style = person["is_private_email_format"] == "string"
            claims["is_private_email"] = _bool_string(private) if string_style else private
        claims["auth_time"] = auth_time
        claims["real_user_status"] = 2

        fault, self.pending_fault = self.pending_fault, None
        kid, key = self._current_key_for(fault == "bad_signature")
        if fault == "wrong_aud":
            claims["aud"] = WRONG_AUDIENCE
        elif fault == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif fault == "expired":
            claims["iat"] = now - 2 * ID_TOKEN_LIFETIME
            claims["exp"] = now - ID_TOKEN_LIFETIME
        elif fault == "wrong_iss":
            claims["iss"] = WRONG_ISSUER
        elif fault == "unknown_kid":
            rotated = SigningKey.generate()
            self.signing_keys.append(rotated)
            kid, key = rotated.kid, rotated.private_key
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def _normalize_person(person: dict[str, Any]) -> dict[str, Any]:
    missing = [key for key in _PERSON_KEYS if not person.get(key)]
    if missing:
        raise ValueError(f"person is missing {', '.join(missing)}")
    normalized = dict(person)
    normalized["is_private_email"] = bool(person.get("is_private_email", False))
    normalized.setdefault("is_private_email_format", "string")
    networks = person.get("networks") or {}
    if not isinstance(networks, dict):
        raise ValueError("networks must map a network name to a profile")
    normalized["networks"] = {name: dict(profile) for name, profile in networks.items()}
    if normalized["is_private_email_format"] not in ("bool", "string"):
        raise ValueError("is_private_email_format must be 'bool' or 'string'")
    return normalized


def _bool_string(value: bool | str) -> str:
    if isinstance(value, str):
        return "true" if value.lower() == "true" else "false"
    return "true" if value else "false"


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()
    return b64url(digest[: len(digest) // 2])
