"""RSA signing keys and base64url helpers shared by Apple and the OpenID Connect networks."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass(frozen=True)
class SigningKey:
    """An RSA key the sandbox signs id_tokens and notifications with."""

    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """Create a fresh RSA 2048 key with a random kid."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(kid=secrets.token_hex(5).upper(), private_key=key)

    def jwk(self) -> dict[str, str]:
        """Public JWK of this key, as Apple publishes it."""
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64_uint(numbers.n),
            "e": b64_uint(numbers.e),
        }


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_uint(value: int) -> str:
    """Unpadded base64url of a big-endian unsigned integer (JWK style)."""
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))
