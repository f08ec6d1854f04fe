"""Test keys, signed tokens and a loopback JWKS endpoint for authentication tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True)
class SigningKey:
    """A private key with the ``kid`` and ``alg`` tokens signed by it carry."""

    kid: str
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def public_pem(self) -> str:
        return (
            self.private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**data, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        extra = {"kid": self.kid, **(headers or {})}
        extra = {k: v for k, v in extra.items() if v is not None}
        return jwt.encode(dict(claims), self.private, algorithm=self.alg, headers=extra)


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))


def ec_key(kid: str) -> SigningKey:
    return SigningKey(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_token(claims: Mapping[str, Any], headers: Mapping[str, Any]) -> str:
    """A token assembled by hand (for ``alg: none`` and friends): header.payload.<empty>."""
    head = b64url(json.dumps(dict(headers)).encode())
    body = b64url(json.dumps(dict(claims)).encode())
    return f"{head}.{body}."


def hs256_token(claims: Mapping[str, Any], secret: bytes, kid: str | None = None) -> str:
    """An HS256 token whose HMAC secret is ``secret`` (the algorithm-confusion attack)."""
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    signing_input = (
        f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(dict(claims)).encode())}"
    )
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for issuer ``https://issuer.test/`` and audience ``troupe-api``."""
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": "https://issuer.test/",
        "aud": "troupe-api",
        "sub": "user-1",
        "iat": now,
        "exp": now + 300,
        "scope": "encounter:read encounter:write",
        "tenant": "acme",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


@dataclass
class JwksServer:
    """A JWKS endpoint on 127.0.0.1: mutable keys, switchable failure, a log of requested paths."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    @property
    def fetches(self) -> int:
        return len(self.requests)


@contextmanager
def serve_jwks(*keys: SigningKey) -> Iterator[JwksServer]:
    """Serve ``keys`` as a JWK set until the block ends."""
    state = JwksServer(keys=[k.jwk() for k in keys])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with lock:
                state.requests.append(self.path)
                status, payload = state.status, {"keys": list(state.keys)}
            body = json.dumps(payload).encode() if status == 200 else b"unavailable"
            if self.path != JWKS_PATH:
                status, body = 404, b"not found"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Keep test output quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="jwks-server", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
