"""In-memory state of the social networks: clients, codes, tokens, faults and signing keys."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.keys import SigningKey, b64url

NETWORKS = ("vkid", "ok", "mailru", "yandex", "telegram", "google")
OIDC_NETWORKS = ("telegram", "google")
OIDC_FAULT_KINDS = frozenset({"bad_signature", "wrong_aud", "wrong_nonce", "expired", "wrong_iss"})
CODE_LIFETIME = 300
WRONG_AUDIENCE = "sandbox-not-your-client"
WRONG_ISSUER = "https://issuer.sandbox.invalid"


class ProviderError(Exception):
    """An OAuth error of a network, answered as JSON ``{"error", "error_description"}``."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(description or error)
        self.error = error
        self.description = description
        self.status = status


@dataclass(frozen=True)
class OAuthClient:
    """An application registered at one network (the product, as that network knows it)."""

    network: str
    client_id: str
    client_secret: str | None
    redirect_uris: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class NetworkCode:
    """An authorization code; single use, bound to everything the token request must repeat."""

    value: str
    network: str
    client_id: str
    redirect_uri: str
    person: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    bindings: dict[str, str]
    auth_time: int
    expires_at: float
    used: bool = False


@dataclass
class NetworkToken:
    """An access or refresh token; tokens from one code share its value as ``grant``."""

    value: str
    kind: str
    network: str
    client_id: str
    person: str
    scope: str
    grant: str
    expires_at: float | None
    revoked: bool = False


def pkce_matches(challenge: str, method: str | None, verifier: str) -> bool:
    """RFC 7636 check of a code_verifier against the stored challenge."""
    computed = verifier
    if method == "S256":
        computed = b64url(hashlib.sha256(verifier.encode()).digest())
    return hmac.compare_digest(computed.encode(), challenge.encode())


class NetworkStore:
    """Everything the six networks remember; every method takes the lock."""

    def __init__(self, issuers: Mapping[str, str] | None = None) -> None:
        self.lock = threading.RLock()
        self.issuers: dict[str, str] = dict(issuers or {})
        self.clients: dict[tuple[str, str], OAuthClient] = {}
        self.codes: dict[str, NetworkCode] = {}
        self.tokens: dict[str, NetworkToken] = {}
        self.token_errors: dict[str, str] = {}
        self.oidc_faults: dict[str, str] = {}
        self._keys: dict[str, SigningKey] = {}
        self._rogue_key: rsa.RSAPrivateKey | None = None

    # Clients

    def register_client(
        self,
        network: str,
        client_id: str,
        *,
        client_secret: str | None,
        redirect_uris: list[str],
        extra: Mapping[str, Any] | None = None,
    ) -> OAuthClient:
        """Register (or replace) a client of one network."""
        _check_network(network, NETWORKS)
        if not isinstance(client_id, str) or not client_id:
            raise ValueError("client_id must be a non-empty string")
        if client_secret is not None and (not isinstance(client_secret, str) or not client_secret):
            raise ValueError("client_secret must be a non-empty string or null")
        if not isinstance(redirect_uris, list | tuple) or not redirect_uris:
            raise ValueError("redirect_uris must be a non-empty list of URLs")
        if not all(isinstance(uri, str) and uri for uri in redirect_uris):
            raise ValueError("redirect_uris must be a non-empty list of URLs")
        if extra is not None and not isinstance(extra, Mapping):
            raise ValueError("extra must be an object")
        extra = dict(extra or {})
        if network == "ok" and not extra.get("application_key"):
            raise ValueError('an ok client needs extra={"application_key": ...}')
        client = OAuthClient(network, client_id, client_secret, tuple(redirect_uris), extra)
        with self.lock:
            self.clients[(network, client_id)] = client
        return client

    def get_client(self, network: str, client_id: str) -> OAuthClient | None:
        """The client registered at this network, if any."""
        with self.lock:
            return self.clients.get((network, client_id))

    def client_by_extra(self, network: str, key: str, value: str) -> OAuthClient | None:
        """The client of this network whose ``extra[key]`` is value (OK's application_key)."""
        with self.lock:
            return next(
                (
                    c
                    for (net, _), c in self.clients.items()
                    if net == network and value and c.extra.get(key) == value
                ),
                None,
            )

    def clients_by_network(self) -> dict[str, list[OAuthClient]]:
        """Every registered client, grouped by network in NETWORKS order."""
        with self.lock:
            clients = sorted(self.clients.values(), key=lambda c: c.client_id)
        return {net: [c for c in clients if c.network == net] for net in NETWORKS}

    # Codes

    def issue_code(
        self,
        client: OAuthClient,
        *,
        redirect_uri: str,
        person: str,
        scope: str = "",
        nonce: str | None = None,
        code_challenge: str | None = None,
        code_challenge_method: str | None = None,
        bindings: Mapping[str, str] | None = None,
        lifetime: int = CODE_LIFETIME,
    ) -> str:
        """Issue a single-use code for ``person`` (an Apple-style sandbox sub)."""
        now = time.time()
        value = secrets.token_urlsafe(32)
        with self.lock:
            for stale in [c for c, code in self.codes.items() if code.expires_at <= now]:
                del self.codes[stale]
            self.codes[value] = NetworkCode(
                value=value,
                network=client.network,
                client_id=client.client_id,
                redirect_uri=redirect_uri,
                person=person,
                scope=scope,
                nonce=nonce,
                code_challenge=code_challenge,
                code_challenge_method=code_challenge_method,
                bindings=dict(bindings or {}),
                auth_time=int(now),
                expires_at=now + lifetime,
            )
        return value

    def redeem_code(
        self,
        network: str,
        value: str,
        *,
        client_id: str,
        redirect_uri: str | None,
        code_verifier: str | None = None,
        bindings: Mapping[str, str] | None = None,
    ) -> NetworkCode:
        """Check and consume a code; ``redirect_uri=None`` for networks that do not repeat it."""
        with self.lock:
            code = self.codes.get(value)
            if code is None or code.network != network or code.expires_at <= time.time():
                raise ProviderError("invalid_grant", "unknown or expired code")
            if code.client_id != client_id:
                raise ProviderError("invalid_grant", "code was issued to another client")
            if code.used:
                # RFC 6749 section 4.1.2: a replayed code revokes what it produced.
                for token in self.tokens.values():
                    if token.grant == code.value:
                        token.revoked = True
                raise ProviderError("invalid_grant", "code already used")
            if redirect_uri is not None and redirect_uri != code.redirect_uri:
                raise ProviderError("invalid_grant", "redirect_uri differs from authorization")
            given = bindings or {}
            for name, expected in code.bindings.items():
                if given.get(name) != expected:
                    raise ProviderError("invalid_grant", f"{name} differs from authorization")
            if code.code_challenge is not None:
                if not code_verifier:
                    raise ProviderError("invalid_grant", "code_verifier is missing")
                if not pkce_matches(code.code_challenge, code.code_challenge_method, code_verifier):
                    raise ProviderError("invalid_grant", "code_verifier does not match")
            code.used = True
            return code

    # Tokens

    def issue_tokens(
        self, code: NetworkCode, *, lifetime: int
    ) -> tuple[NetworkToken, NetworkToken]:
        """An access token living ``lifetime`` seconds and a refresh token for a redeemed code."""
        with self.lock:
            access = self._new_token("access_token", code, time.time() + lifetime)
            refresh = self._new_token("refresh_token", code, None)
        return access, refresh

    def access_token(
        self, network: str, value: str, client_id: str | None = None
    ) -> NetworkToken | None:
        """The live access token with this value at this network (and client, when given)."""
        with self.lock:
            token = self.tokens.get(value)
        if token is None or token.network != network or token.kind != "access_token":
            return None
        if token.revoked or (token.expires_at is not None and token.expires_at <= time.time()):
            return None
        if client_id is not None and token.client_id != client_id:
            return None
        return token

    def revoke_token(self, network: str, value: str, client_id: str | None = None) -> bool:
        """Revoke a token (a refresh token takes its grant along); False if unknown."""
        with self.lock:
            token = self.tokens.get(value)
            if token is None or token.network != network:
                return False
            if client_id is not None and token.client_id != client_id:
                return False
            token.revoked = True
            if token.kind == "refresh_token":
                for other in self.tokens.values():
                    if other.grant == token.grant:
                        other.revoked = True
            return True

    # Faults

    def inject_token_error(self, network: str, error: str) -> None:
        """Make the next token request of this network fail with ``{"error": error}``."""
        _check_network(network, NETWORKS)
        if not isinstance(error, str) or not error:
            raise ValueError("error must be a non-empty string")
        with self.lock:
            self.token_errors[network] = error

    def pop_token_error(self, network: str) -> str | None:
        """The pending token error of this network, consumed."""
        with self.lock:
            return self.token_errors.pop(network, None)

    def inject_oidc_fault(self, network: str, kind: str) -> None:
        """Make the next id_token of this OpenID Connect network faulty."""
        _check_network(network, OIDC_NETWORKS)
        if kind not in OIDC_FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; expected one of {sorted(OIDC_FAULT_KINDS)}")
        with self.lock:
            self.oidc_faults[network] = kind

    # Keys and id_tokens

    def jwks(self, network: str) -> dict[str, list[dict[str, str]]]:
        """The public keys of this network."""
        with self.lock:
            return {"keys": [self._key(network).jwk()]}

    def sign_id_token(self, network: str, claims: dict[str, Any]) -> str:
        """Sign an RS256 id_token, applying this network's pending fault (once)."""
        claims = dict(claims)
        with self.lock:
            key = self._key(network)
            private_key = key.private_key
            fault = self.oidc_faults.pop(network, None)
            if fault == "bad_signature":
                if self._rogue_key is None:
                    self._rogue_key = SigningKey.generate().private_key
                private_key = self._rogue_key
        if fault == "wrong_aud":
            claims["aud"] = WRONG_AUDIENCE
        elif fault == "wrong_nonce":
            claims["nonce"] = secrets.token_urlsafe(16)
        elif fault == "expired":
            lifetime = claims["exp"] - claims["iat"]
            claims["iat"] -= 2 * lifetime
            claims["exp"] -= 2 * lifetime
        elif fault == "wrong_iss":
            claims["iss"] = WRONG_ISSUER
        return jwt.encode(claims, private_key, algorithm="RS256", headers={"kid": key.kid})

    def reset(self) -> None:
        """Forget codes, tokens and faults; keep clients, issuers and keys."""
        with self.lock:
            self.codes.clear()
            self.tokens.clear()
            self.token_errors.clear()
            self.oidc_faults.clear()

    # Internals (callers hold the lock)

    def _key(self, network: str) -> SigningKey:
        if network not in self._keys:
            self._keys[network] = SigningKey.generate()
        return self._keys[network]

    def _new_token(self, kind: str, code: NetworkCode, expires_at: float | None) -> NetworkToken:
        prefix = "at" if kind == "access_token" else "rt"
        token = NetworkToken(
            value=f"{prefix}.{code.network}.{secrets.token_urlsafe(32)}",
            kind=kind,
            network=code.network,
            client_id=code.client_id,
            person=code.person,
            scope=code.scope,
            grant=code.value,
            expires_at=expires_at,
        )
        self.tokens[token.value] = token
        return token


def _check_network(network: str, allowed: tuple[str, ...]) -> None:
    if network not in allowed:
        raise ValueError(f"unknown network {network!r}; expected one of {list(allowed)}")
