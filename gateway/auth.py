"""Bearer JWT authentication and scope checks for the gateway, against a JWKS URL or a PEM key."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

import httpx
import jwt
import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.types import ASGIApp

from gateway.problems import ProblemError, forbidden, service_unavailable, unauthorized
from schemas.base import KEY_PATTERN

__all__ = [
    "ANONYMOUS",
    "DEFAULT_ALGORITHMS",
    "ActionNotConfigured",
    "AuthConfig",
    "AuthConfigError",
    "AuthError",
    "Authenticator",
    "BearerAuthMiddleware",
    "InsufficientScope",
    "InvalidToken",
    "JwksCache",
    "KeySetUnavailable",
    "MissingCredentials",
    "Principal",
    "auth_middleware",
    "principal_of",
    "require_scope",
    "scopes_of",
]

log = logging.getLogger("troupe.gateway.auth")

DEFAULT_ALGORITHMS: Final = ("RS256", "ES256")
SUPPORTED_ALGORITHMS: Final = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
"""Asymmetric algorithms only: the gateway holds public keys, never a shared secret."""

REQUIRED_CLAIMS: Final = ("exp", "iat", "iss", "aud", "sub")
_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_TOKEN68 = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")
_TENANT = re.compile(KEY_PATTERN)
_KID_MAX: Final = 256
_JWKS_MAX_BYTES: Final = 1 << 20

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)


class AuthConfigError(ValueError):
    """Raised when the authentication configuration is incomplete or unsafe."""


class AuthConfig(msgspec.Struct, frozen=True, kw_only=True):
    """How the gateway authenticates callers (``AuthConfig.from_env`` reads ``TROUPE_AUTH_*``)."""

    enabled: bool = True
    """False: every request runs as the anonymous local principal (development only)."""
    issuer: str = ""
    """The exact ``iss`` tokens must carry."""
    audience: tuple[str, ...] = ()
    """Tokens must name at least one of these in ``aud``."""
    jwks_url: str | None = None
    """Where the issuer publishes its signing keys (https, or http on loopback)."""
    public_key_pem: str | None = None
    """A PEM public key or certificate, instead of ``jwks_url``."""
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    """Accepted ``alg`` values; the token's header never widens this list."""
    leeway_seconds: float = 30.0
    """Clock skew tolerated on ``exp``, ``nbf`` and ``iat``."""
    tenant_claim: str = "tenant"
    """The claim naming the caller's tenant (absent: the default tenant)."""
    required_scopes: dict[str, tuple[str, ...]] = {}
    """Action (``encounter.next_turn``) -> scopes a caller needs for it."""
    max_token_bytes: int = 8192
    """Tokens longer than this are refused before any parsing."""
    jwks_cache_ttl_seconds: float = 300.0
    """How long a fetched key set is used before it is fetched again."""
    jwks_refresh_interval_seconds: float = 30.0
    """At most one refetch per interval when a token names an unknown ``kid``."""
    jwks_max_stale_seconds: float = 3600.0
    """While the JWKS endpoint is down, keep using the last key set this long past its TTL."""
    jwks_timeout_seconds: float = 5.0
    realm: str = "troupe"

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        if not self.issuer:
            raise AuthConfigError("auth needs an issuer: set TROUPE_AUTH_ISSUER")
        if not self.audience or not all(self.audience):
            raise AuthConfigError("auth needs an audience: set TROUPE_AUTH_AUDIENCE")
        if (self.jwks_url is None) == (self.public_key_pem is None):
            raise AuthConfigError(
                "set exactly one of TROUPE_AUTH_JWKS_URL and TROUPE_AUTH_PUBLIC_KEY"
            )
        if self.jwks_url is not None:
            _check_jwks_url(self.jwks_url)
        if not self.algorithms:
            raise AuthConfigError("TROUPE_AUTH_ALGORITHMS is empty")
        for alg in self.algorithms:
            if alg not in SUPPORTED_ALGORITHMS:
                raise AuthConfigError(
                    f"algorithm {alg!r} is not accepted; choose from "
                    f"{', '.join(sorted(SUPPORTED_ALGORITHMS))} (no 'none', no shared-secret HS*)"
                )
        if not 0 <= self.leeway_seconds <= 300:
            raise AuthConfigError("leeway must be between 0 and 300 seconds")
        if not 512 <= self.max_token_bytes <= 65536:
            raise AuthConfigError("max_token_bytes must be between 512 and 65536")
        if self.jwks_cache_ttl_seconds <= 0 or self.jwks_refresh_interval_seconds < 0:
            raise AuthConfigError("JWKS cache TTL must be positive, refresh interval >= 0")
        if not self.tenant_claim:
            raise AuthConfigError("tenant_claim must name a claim")

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, allow_unconfigured: bool = False
    ) -> AuthConfig:
        """Read ``TROUPE_AUTH_*``; unconfigured means disabled only if ``allow_unconfigured``.

        ``TROUPE_AUTH_DISABLED=1`` turns authentication off. ``TROUPE_AUTH_PUBLIC_KEY``
        is a PEM text or ``@path`` to a file; ``TROUPE_AUTH_AUDIENCE`` and
        ``TROUPE_AUTH_ALGORITHMS`` are comma separated; ``TROUPE_AUTH_REQUIRED_SCOPES``
        is a JSON object of action -> list of scopes (or one space-separated string).
        """
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"TROUPE_AUTH_{name}", "").strip()
            return value or None

        if (get("DISABLED") or "").lower() in _TRUE:
            return cls(enabled=False)
        keys = ("ISSUER", "AUDIENCE", "JWKS_URL", "PUBLIC_KEY")
        if not any(get(name) for name in keys):
            if allow_unconfigured:
                return cls(enabled=False)
            raise AuthConfigError(
                "authentication is not configured: set TROUPE_AUTH_ISSUER, "
                "TROUPE_AUTH_AUDIENCE and TROUPE_AUTH_JWKS_URL (or TROUPE_AUTH_PUBLIC_KEY), "
                "or TROUPE_AUTH_DISABLED=1 for local development"
            )
        fields: dict[str, Any] = {
            "issuer": get("ISSUER") or "",
            "audience": _split(get("AUDIENCE") or ""),
            "jwks_url": get("JWKS_URL"),
            "public_key_pem": _read_pem(get("PUBLIC_KEY")),
        }
        if algorithms := get("ALGORITHMS"):
            fields["algorithms"] = _split(algorithms)
        if leeway := get("LEEWAY"):
            try:
                fields["leeway_seconds"] = float(leeway)
            except ValueError:
                raise AuthConfigError(f"TROUPE_AUTH_LEEWAY={leeway!r} is not a number") from None
        if claim := get("TENANT_CLAIM"):
            fields["tenant_claim"] = claim
        if scopes := get("REQUIRED_SCOPES"):
            fields["required_scopes"] = _parse_required_scopes(scopes)
        try:
            return cls(**fields)
        except (TypeError, msgspec.ValidationError) as exc:
            raise AuthConfigError(str(exc)) from exc


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _read_pem(value: str | None) -> str | None:
    if value is None or not value.startswith("@"):
        return value
    path = Path(value[1:]).expanduser()
    try:
        return path.read_text()
    except OSError as exc:
        raise AuthConfigError(f"TROUPE_AUTH_PUBLIC_KEY: cannot read {path}: {exc}") from exc


def _parse_required_scopes(text: str) -> dict[str, tuple[str, ...]]:
    try:
        raw = msgspec.json.decode(text, type=dict[str, list[str] | str])
    except msgspec.MsgspecError as exc:
        raise AuthConfigError(
            f"TROUPE_AUTH_REQUIRED_SCOPES must be a JSON object of action -> scopes: {exc}"
        ) from exc
    return {
        action: tuple(scopes.split() if isinstance(scopes, str) else scopes)
        for action, scopes in raw.items()
    }


def _check_jwks_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return
    raise AuthConfigError(f"JWKS URL {url!r} must be https (plain http only on loopback)")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: the verified token's subject, issuer, tenant and scopes."""

    subject: str
    issuer: str
    tenant: str | None = None
    scopes: frozenset[str] = frozenset()
    expires_at: datetime | None = None
    anonymous: bool = False
    """True only when authentication is disabled; such a principal passes every scope check."""

    def has_scopes(self, required: Iterable[str]) -> bool:
        """True if every scope in ``required`` was granted (always, when anonymous)."""
        return self.anonymous or set(required) <= self.scopes


ANONYMOUS: Final = Principal(subject="local", issuer="troupe:local", anonymous=True)


def _quoted(value: str) -> str:
    # RFC 6750 allows only printable ASCII without '"' and '\' in these parameters.
    return "".join(c for c in value if " " <= c <= "~" and c not in '"\\')


def _challenge(
    realm: str, error: str | None = None, description: str | None = None, scope: str | None = None
) -> str:
    parts = [f'realm="{_quoted(realm)}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quoted(description)}"')
    if scope:
        parts.append(f'scope="{_quoted(scope)}"')
    return "Bearer " + ", ".join(parts)


class AuthError(ProblemError):
    """Raised when a request cannot be authenticated or authorised."""


class MissingCredentials(AuthError):
    """Raised when a request carries no bearer token (401, no error code per RFC 6750)."""

    def __init__(self, realm: str = "troupe") -> None:
        super().__init__(
            unauthorized(
                "this endpoint needs a token: send 'Authorization: Bearer <token>'",
                code="missing_token",
            ),
            headers={"WWW-Authenticate": _challenge(realm)},
        )


class InvalidToken(AuthError):
    """Raised when a bearer token is malformed, expired, or fails verification (401)."""

    def __init__(self, reason: str, realm: str = "troupe") -> None:
        super().__init__(
            unauthorized(f"invalid token: {reason}", code="invalid_token"),
            headers={"WWW-Authenticate": _challenge(realm, "invalid_token", reason)},
        )
        self.reason = reason


class InsufficientScope(AuthError):
    """Raised when a valid token lacks a scope the action needs (403)."""

    def __init__(
        self, required: Iterable[str], granted: Iterable[str], realm: str = "troupe"
    ) -> None:
        self.required = tuple(sorted(set(required)))
        self.missing = tuple(sorted(set(self.required) - set(granted)))
        reason = f"this needs scope {' '.join(self.missing)}"
        super().__init__(
            forbidden(reason, code="insufficient_scope", required_scopes=self.required),
            headers={
                "WWW-Authenticate": _challenge(
                    realm, "insufficient_scope", reason, " ".join(self.required)
                )
            },
        )


class ActionNotConfigured(AuthError):
    """Raised for an action that stays closed until an operator configures its scopes (403)."""

    def __init__(self, action: str, why: str) -> None:
        super().__init__(
            forbidden(
                f"{action} is closed until TROUPE_AUTH_REQUIRED_SCOPES names scopes for it: {why}",
                code="action_not_configured",
            )
        )
        self.action = action


class KeySetUnavailable(AuthError):
    """Raised when the issuer's JWKS cannot be fetched and no usable copy is cached (503)."""

    def __init__(self, url: str, cause: str, retry_after: int = 30) -> None:
        super().__init__(
            service_unavailable(
                "cannot verify tokens right now: the signing keys are unavailable; retry later",
                code="auth_keys_unavailable",
            ),
            headers={"Retry-After": str(retry_after)},
        )
        self.url = url
        self.cause = cause


def scopes_of(claims: Mapping[str, Any]) -> frozenset[str]:
    """Granted scopes: ``scope`` (space separated) and ``scp`` (a list, or a string)."""
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            for item in value:
                granted.update(item.split())
        else:
            raise InvalidToken(f"claim {name!r} must be a string or a list of strings")
    return frozenset(granted)


def require_scope(principal: Principal, *scopes: str, realm: str = "troupe") -> None:
    """Raise ``InsufficientScope`` unless ``principal`` holds every one of ``scopes``."""
    if not principal.has_scopes(scopes):
        raise InsufficientScope(scopes, principal.scopes, realm)


class _JwkSet(msgspec.Struct, frozen=True):
    keys: list[dict[str, Any]]


class JwksCache:
    """The issuer's signing keys, fetched from a fixed URL and kept for a TTL.

    A token's ``kid`` is only ever a lookup key into the fetched set: it never
    becomes part of a URL or a path. An unknown ``kid`` triggers at most one
    refetch per ``refresh_interval`` (key rotation), so a flood of forged
    ``kid`` values cannot turn into a flood of requests to the issuer.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 300.0,
        refresh_interval: float = 30.0,
        max_stale: float = 3600.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        realm: str = "troupe",
    ) -> None:
        self.url = url
        self.realm = realm
        self.ttl = ttl
        self.refresh_interval = refresh_interval
        self.max_stale = max_stale
        self.timeout = timeout
        self._clock = clock
        self._keys: dict[str, list[dict[str, Any]]] = {}
        self._unnamed: list[dict[str, Any]] = []
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0
        """How many times the key set was requested (exposed for metrics)."""

    async def key_for(self, kid: str | None, alg: str) -> dict[str, Any]:
        """The JWK that verifies a token with this ``kid`` and ``alg``, else ``InvalidToken``."""
        if kid is not None and (not kid or len(kid) > _KID_MAX):
            raise InvalidToken("the kid header is empty or too long", self.realm)
        await self._ensure_fresh()
        if (jwk := self._lookup(kid, alg)) is not None:
            return jwk
        if await self._refresh_if_allowed():
            jwk = self._lookup(kid, alg)
            if jwk is not None:
                return jwk
        if kid is None:
            raise InvalidToken(
                "the token names no kid and the key set has no single key for it", self.realm
            )
        raise InvalidToken(
            "the token's signing key (kid) is not in the issuer's key set", self.realm
        )

    def _lookup(self, kid: str | None, alg: str) -> dict[str, Any] | None:
        if kid is None:
            candidates = [k for keys in self._keys.values() for k in keys] + self._unnamed
            matching = [k for k in candidates if k.get("alg") in (None, alg)]
            return matching[0] if len(matching) == 1 else None
        for jwk in self._keys.get(kid, ()):
            if jwk.get("alg") in (None, alg):
                return jwk
        return None

    async def _ensure_fresh(self) -> None:
        if self._is_fresh(self._clock()):
            return
        async with self._lock:
            now = self._clock()
            if self._is_fresh(now):
                return
            if not self._may_attempt(now):
                # A fetch failed moments ago: use what we have rather than hammer the issuer.
                if self._fetched_at is None:
                    raise KeySetUnavailable(self.url, "the last fetch failed", self._retry_after())
                self._check_age(now, "the last refresh failed")
                return
            try:
                await self._fetch()
            except KeySetUnavailable as exc:
                if self._fetched_at is None:
                    raise
                self._check_age(now, exc.cause)
                log.warning(
                    "JWKS refresh from %s failed (%s); using the cached set", self.url, exc.cause
                )

    def _is_fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self.ttl

    def _retry_after(self) -> int:
        return max(1, round(self.refresh_interval))

    def _check_age(self, now: float, cause: str) -> None:
        assert self._fetched_at is not None
        if now - self._fetched_at > self.ttl + self.max_stale:
            raise KeySetUnavailable(
                self.url, f"the cached key set is too old; {cause}", self._retry_after()
            )

    def _may_attempt(self, now: float) -> bool:
        return self._attempted_at is None or now - self._attempted_at >= self.refresh_interval

    async def _refresh_if_allowed(self) -> bool:
        async with self._lock:
            now = self._clock()
            if not self._may_attempt(now):
                return False
            try:
                await self._fetch()
            except KeySetUnavailable as exc:
                log.warning("JWKS refresh for an unknown kid failed: %s", exc.cause)
                return False
            return True

    async def _fetch(self) -> None:
        self._attempted_at = self._clock()
        self.fetches += 1
        try:
            body = await self._get()
            keyset = msgspec.json.decode(body, type=_JwkSet)
        except (httpx.HTTPError, msgspec.MsgspecError, ValueError) as exc:
            raise KeySetUnavailable(
                self.url, f"{type(exc).__name__}: {exc}", self._retry_after()
            ) from exc
        named: dict[str, list[dict[str, Any]]] = {}
        unnamed: list[dict[str, Any]] = []
        for jwk in keyset.keys:
            if not _usable_for_signatures(jwk):
                continue
            kid = jwk.get("kid")
            if isinstance(kid, str) and kid:
                named.setdefault(kid, []).append(jwk)
            else:
                unnamed.append(jwk)
        if not named and not unnamed:
            raise KeySetUnavailable(
                self.url, "the key set holds no usable signing key", self._retry_after()
            )
        self._keys, self._unnamed = named, unnamed
        self._fetched_at = self._attempted_at

    async def _get(self) -> bytes:
        # A client per fetch: fetches are rare, and this keeps the cache free of event-loop ties.
        async with (
            httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client,
            client.stream(
                "GET", self.url, headers={"Accept": "application/jwk-set+json, application/json"}
            ) as response,
        ):
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code} from the JWKS endpoint")
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > _JWKS_MAX_BYTES:
                    raise ValueError("the key set is larger than 1 MiB")
                chunks.append(chunk)
            return b"".join(chunks)


def _usable_for_signatures(jwk: Mapping[str, Any]) -> bool:
    if jwk.get("kty") not in ("RSA", "EC", "OKP"):
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return False
    alg = jwk.get("alg")
    return alg is None or alg in SUPPORTED_ALGORITHMS


_KEY_TYPES: Final[dict[str, tuple[type[Any], ...]]] = {
    "RS": (rsa.RSAPublicKey,),
    "PS": (rsa.RSAPublicKey,),
    "ES": (ec.EllipticCurvePublicKey,),
    "Ed": (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey),
}


def _load_public_key(pem: str) -> PublicKey:
    data = pem.strip().encode()
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise AuthConfigError(f"TROUPE_AUTH_PUBLIC_KEY is not a PEM public key: {exc}") from exc
    if not isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        raise AuthConfigError(f"unsupported public key type {type(key).__name__}")
    return key


class Authenticator:
    """Turns an ``Authorization`` header into a ``Principal``, or raises an ``AuthError``."""

    def __init__(self, config: AuthConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.closed: dict[str, str] = {}
        """Actions no token may perform until scopes are configured for them, and why."""
        self._public_key: PublicKey | None = None
        self.jwks: JwksCache | None = None
        if not config.enabled:
            return
        if config.public_key_pem is not None:
            self._public_key = _load_public_key(config.public_key_pem)
            if not any(self._key_fits(alg) for alg in config.algorithms):
                raise AuthConfigError(
                    f"the configured {type(self._public_key).__name__} verifies none of "
                    f"the algorithms {', '.join(config.algorithms)}"
                )
        elif config.jwks_url is not None:
            self.jwks = JwksCache(
                config.jwks_url,
                ttl=config.jwks_cache_ttl_seconds,
                refresh_interval=config.jwks_refresh_interval_seconds,
                max_stale=config.jwks_max_stale_seconds,
                timeout=config.jwks_timeout_seconds,
                clock=clock,
                realm=config.realm,
            )

    @property
    def enabled(self) -> bool:
        """False when every caller is the anonymous local principal."""
        return self.config.enabled

    def _key_fits(self, alg: str) -> bool:
        return isinstance(self._public_key, _KEY_TYPES[alg[:2]])

    async def authenticate_header(self, authorization: str | None) -> Principal:
        """The principal behind an ``Authorization`` header value (``Bearer <token>``)."""
        if not self.enabled:
            return ANONYMOUS
        if authorization is None or not authorization.strip():
            raise MissingCredentials(self.config.realm)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise MissingCredentials(self.config.realm)
        return await self.authenticate(token.strip())

    async def authenticate(self, token: str) -> Principal:
        """Verify a compact JWT and map its claims; ``InvalidToken`` says why it failed."""
        if not self.enabled:
            return ANONYMOUS
        realm = self.config.realm
        if len(token.encode("utf-8", "surrogatepass")) > self.config.max_token_bytes:
            raise InvalidToken(
                f"the token is larger than {self.config.max_token_bytes} bytes", realm
            )
        if not token or not _TOKEN68.match(token) or token.count(".") != 2:
            raise InvalidToken("the token is not a compact JWS (header.payload.signature)", realm)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise InvalidToken("the token header cannot be decoded", realm) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.config.algorithms:
            raise InvalidToken(f"algorithm {alg!r} is not accepted", realm)
        key = await self._key(header, alg)
        claims = self._decode(token, key, alg)
        return self._principal(claims)

    async def _key(self, header: Mapping[str, Any], alg: str) -> PublicKey | jwt.PyJWK:
        realm = self.config.realm
        if self._public_key is not None:
            if not self._key_fits(alg):
                raise InvalidToken(f"algorithm {alg} does not fit the configured key", realm)
            return self._public_key
        assert self.jwks is not None
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise InvalidToken("the kid header must be a string", realm)
        jwk = await self.jwks.key_for(kid, alg)
        try:
            return jwt.PyJWK(jwk, algorithm=alg)
        except jwt.PyJWTError:
            raise InvalidToken(f"the key named by kid cannot verify {alg}", realm) from None

    def _decode(self, token: str, key: PublicKey | jwt.PyJWK, alg: str) -> dict[str, Any]:
        config = self.config
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=list(config.audience),
                issuer=config.issuer,
                leeway=config.leeway_seconds,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "verify_signature": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iat": True,
                    "verify_iss": True,
                    "verify_aud": True,
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(_describe(exc), config.realm) from None

    def _principal(self, claims: Mapping[str, Any]) -> Principal:
        realm = self.config.realm
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise InvalidToken("the sub claim must be a non-empty string", realm)
        tenant = claims.get(self.config.tenant_claim)
        if tenant is not None and (not isinstance(tenant, str) or not _TENANT.match(tenant)):
            raise InvalidToken(
                f"the {self.config.tenant_claim} claim must be 1-128 letters, digits, '_' or '-'",
                realm,
            )
        exp = claims.get("exp")
        return Principal(
            subject=subject,
            issuer=str(claims["iss"]),
            tenant=tenant,
            scopes=scopes_of(claims),
            expires_at=datetime.fromtimestamp(exp, UTC) if isinstance(exp, int | float) else None,
        )

    def required_scopes(self, action: str) -> tuple[str, ...]:
        """The scopes configured for ``action`` (none: any authenticated caller may)."""
        return self.config.required_scopes.get(action, ())

    def close(self, actions: Mapping[str, str]) -> None:
        """Refuse ``actions`` (action -> why) to every token unless scopes are configured."""
        self.closed.update(actions)

    def authorize(self, principal: Principal, action: str) -> None:
        """Raise ``InsufficientScope`` unless ``principal`` may perform ``action``."""
        if not self.enabled:
            return
        required = self.required_scopes(action)
        if not required and action in self.closed:
            raise ActionNotConfigured(action, self.closed[action])
        require_scope(principal, *required, realm=self.config.realm)

    def guard(
        self, action: str
    ) -> Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], None]:
        """A Litestar guard allowing ``action`` only to callers with its configured scopes."""

        def check(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
            self.authorize(principal_of(connection), action)

        return check


def _describe(exc: jwt.PyJWTError) -> str:
    match exc:
        case jwt.ExpiredSignatureError():
            return "the token has expired"
        case jwt.ImmatureSignatureError():
            return "the token is not valid yet (nbf or iat in the future)"
        case jwt.MissingRequiredClaimError():
            return f"the token lacks the required {exc.claim} claim"
        case jwt.InvalidIssuerError():
            return "the token was issued by an unexpected issuer"
        case jwt.InvalidAudienceError():
            return "the token is not meant for this audience"
        case jwt.InvalidSignatureError():
            return "the signature does not verify"
        case jwt.InvalidAlgorithmError():
            return "the token's algorithm is not accepted"
        case jwt.InvalidIssuedAtError():
            return "the iat claim must be a number"
        case jwt.InvalidKeyError():
            return "the signing key is not acceptable"
        case _:
            return "the token cannot be decoded"


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The principal the auth middleware attached to this request."""
    user = connection.scope.get("user")
    if not isinstance(user, Principal):
        raise MissingCredentials()
    return user


class BearerAuthMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates HTTP and WebSocket connections and sets ``request.user`` to a ``Principal``.

    Browsers cannot set headers on a WebSocket handshake, so a WebSocket may
    pass its token as the ``access_token`` query parameter instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        exclude: str | list[str] | None = None,
        exclude_from_auth_key: str = "exclude_from_auth",
    ) -> None:
        super().__init__(app, exclude=exclude, exclude_from_auth_key=exclude_from_auth_key)
        self.authenticator = authenticator

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        values = connection.headers.getall("authorization", [])
        if len(values) > 1:
            raise InvalidToken("send one Authorization header", self.authenticator.config.realm)
        header = values[0] if values else None
        if header is None and connection.scope["type"] == ScopeType.WEBSOCKET:
            token = connection.query_params.get("access_token")
            header = None if token is None else f"Bearer {token}"
        principal = await self.authenticator.authenticate_header(header)
        return AuthenticationResult(user=principal, auth=None)


def auth_middleware(
    authenticator: Authenticator, *, exclude: Sequence[str] = ()
) -> DefineMiddleware:
    """Middleware for ``Litestar(middleware=[...])``; ``exclude`` lists path regexes left open."""
    return DefineMiddleware(
        BearerAuthMiddleware, authenticator=authenticator, exclude=list(exclude) or None
    )
