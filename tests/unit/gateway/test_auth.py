"""Bearer JWT verification against a loopback JWKS endpoint and a PEM key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway.auth import (
    ANONYMOUS,
    AuthConfig,
    AuthConfigError,
    Authenticator,
    InsufficientScope,
    InvalidToken,
    KeySetUnavailable,
    MissingCredentials,
    Principal,
    require_scope,
    scopes_of,
)
from tests.support.jwks import (
    JwksServer,
    SigningKey,
    b64url,
    claims,
    ec_key,
    hs256_token,
    rsa_key,
    serve_jwks,
    unsigned_token,
)

ISSUER = "https://issuer.test/"
AUDIENCE = "troupe-api"


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def rsa1() -> SigningKey:
    return rsa_key("rsa-1")


@pytest.fixture(scope="module")
def rsa2() -> SigningKey:
    return rsa_key("rsa-2")


@pytest.fixture(scope="module")
def ec1() -> SigningKey:
    return ec_key("ec-1")


@pytest.fixture
def jwks(rsa1: SigningKey, ec1: SigningKey) -> Iterator[JwksServer]:
    with serve_jwks(rsa1, ec1) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def jwks_config(server: JwksServer, **overrides: Any) -> AuthConfig:
    fields: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": (AUDIENCE,),
        "jwks_url": server.url,
        "jwks_refresh_interval_seconds": 30.0,
    }
    fields.update(overrides)
    return AuthConfig(**fields)


@pytest.fixture
def auth(jwks: JwksServer, clock: FakeClock) -> Authenticator:
    return Authenticator(jwks_config(jwks), clock=clock)


async def test_valid_rs256_token_gives_a_principal(auth: Authenticator, rsa1: SigningKey) -> None:
    token = rsa1.sign(claims(scp=["policy:admin"]))
    principal = await auth.authenticate_header(f"Bearer {token}")
    assert principal.subject == "user-1"
    assert principal.issuer == ISSUER
    assert principal.tenant == "acme"
    assert principal.scopes == {"encounter:read", "encounter:write", "policy:admin"}
    assert principal.expires_at is not None
    assert not principal.anonymous


async def test_valid_es256_token(auth: Authenticator, ec1: SigningKey) -> None:
    principal = await auth.authenticate(ec1.sign(claims(tenant=None)))
    assert principal.subject == "user-1"
    assert principal.tenant is None


async def test_audience_list_in_token_matches_any_configured(
    auth: Authenticator, rsa1: SigningKey
) -> None:
    principal = await auth.authenticate(rsa1.sign(claims(aud=["other", AUDIENCE])))
    assert principal.subject == "user-1"


async def test_keys_are_cached_between_tokens(
    auth: Authenticator, jwks: JwksServer, rsa1: SigningKey, ec1: SigningKey
) -> None:
    for _ in range(3):
        await auth.authenticate(rsa1.sign(claims()))
        await auth.authenticate(ec1.sign(claims()))
    assert jwks.fetches == 1


async def test_cache_expires_after_ttl(
    auth: Authenticator, jwks: JwksServer, rsa1: SigningKey, clock: FakeClock
) -> None:
    await auth.authenticate(rsa1.sign(claims()))
    clock.now += 301
    await auth.authenticate(rsa1.sign(claims()))
    assert jwks.fetches == 2


async def test_expired_token(auth: Authenticator, rsa1: SigningKey) -> None:
    now = int(time.time())
    with pytest.raises(InvalidToken, match="expired"):
        await auth.authenticate(rsa1.sign(claims(iat=now - 600, exp=now - 120)))


async def test_expiry_within_leeway_is_accepted(auth: Authenticator, rsa1: SigningKey) -> None:
    now = int(time.time())
    principal = await auth.authenticate(rsa1.sign(claims(iat=now - 600, exp=now - 10)))
    assert principal.subject == "user-1"


async def test_leeway_is_configurable(jwks: JwksServer, rsa1: SigningKey) -> None:
    strict = Authenticator(jwks_config(jwks, leeway_seconds=0))
    now = int(time.time())
    with pytest.raises(InvalidToken, match="expired"):
        await strict.authenticate(rsa1.sign(claims(iat=now - 600, exp=now - 10)))


async def test_not_yet_valid_token(auth: Authenticator, rsa1: SigningKey) -> None:
    with pytest.raises(InvalidToken, match="not valid yet"):
        await auth.authenticate(rsa1.sign(claims(nbf=int(time.time()) + 120)))


async def test_nbf_within_leeway_is_accepted(auth: Authenticator, rsa1: SigningKey) -> None:
    principal = await auth.authenticate(rsa1.sign(claims(nbf=int(time.time()) + 10)))
    assert principal.subject == "user-1"


@pytest.mark.parametrize("claim", ["exp", "sub", "iat", "iss", "aud"])
async def test_required_claims(auth: Authenticator, rsa1: SigningKey, claim: str) -> None:
    token = rsa1.sign(claims(**{claim: None}))
    with pytest.raises(InvalidToken, match=f"lacks the required {claim} claim"):
        await auth.authenticate(token)


async def test_empty_subject_is_refused(auth: Authenticator, rsa1: SigningKey) -> None:
    with pytest.raises(InvalidToken, match="sub claim"):
        await auth.authenticate(rsa1.sign(claims(sub="")))


async def test_wrong_issuer(auth: Authenticator, rsa1: SigningKey) -> None:
    with pytest.raises(InvalidToken, match="unexpected issuer"):
        await auth.authenticate(rsa1.sign(claims(iss="https://evil.test/")))


async def test_wrong_audience(auth: Authenticator, rsa1: SigningKey) -> None:
    with pytest.raises(InvalidToken, match="audience"):
        await auth.authenticate(rsa1.sign(claims(aud="someone-else")))


async def test_bad_signature(auth: Authenticator, rsa1: SigningKey) -> None:
    impostor = SigningKey(rsa1.kid, "RS256", rsa_key("x").private)
    with pytest.raises(InvalidToken, match="signature does not verify"):
        await auth.authenticate(impostor.sign(claims()))


async def test_tampered_payload(auth: Authenticator, rsa1: SigningKey) -> None:
    header, _, signature = rsa1.sign(claims()).split(".")
    forged = b64url(json.dumps(claims(sub="admin", scope="everything")).encode())
    with pytest.raises(InvalidToken, match="signature does not verify"):
        await auth.authenticate(f"{header}.{forged}.{signature}")


async def test_alg_none_is_refused(auth: Authenticator, jwks: JwksServer) -> None:
    token = unsigned_token(claims(), {"alg": "none", "typ": "JWT", "kid": "rsa-1"})
    with pytest.raises(InvalidToken, match="'none' is not accepted"):
        await auth.authenticate(token)
    assert jwks.fetches == 0


async def test_alg_none_refused_even_with_a_signature_segment(auth: Authenticator) -> None:
    token = unsigned_token(claims(), {"alg": "none"}) + "c2ln"
    with pytest.raises(InvalidToken, match="not accepted"):
        await auth.authenticate(token)


async def test_hs256_signed_with_the_jwks_public_key_is_refused(
    auth: Authenticator, rsa1: SigningKey
) -> None:
    token = hs256_token(claims(), rsa1.public_pem().encode(), kid=rsa1.kid)
    with pytest.raises(InvalidToken, match="'HS256' is not accepted"):
        await auth.authenticate(token)


async def test_hs256_signed_with_the_configured_pem_is_refused(rsa1: SigningKey) -> None:
    pem = rsa1.public_pem()
    auth = Authenticator(AuthConfig(issuer=ISSUER, audience=(AUDIENCE,), public_key_pem=pem))
    assert (await auth.authenticate(rsa1.sign(claims()))).subject == "user-1"
    with pytest.raises(InvalidToken, match="'HS256' is not accepted"):
        await auth.authenticate(hs256_token(claims(), pem.encode()))


def test_symmetric_and_none_algorithms_cannot_be_configured(jwks: JwksServer) -> None:
    for alg in ("HS256", "none", "RS1"):
        with pytest.raises(AuthConfigError, match="not accepted"):
            jwks_config(jwks, algorithms=("RS256", alg))


async def test_algorithm_outside_the_allow_list(jwks: JwksServer, ec1: SigningKey) -> None:
    rs_only = Authenticator(jwks_config(jwks, algorithms=("RS256",)))
    with pytest.raises(InvalidToken, match="'ES256' is not accepted"):
        await rs_only.authenticate(ec1.sign(claims()))


async def test_key_used_with_another_algorithm_family(auth: Authenticator, ec1: SigningKey) -> None:
    # The header says ES256 but names the RSA key: the RSA JWK cannot verify ES256.
    with pytest.raises(InvalidToken):
        await auth.authenticate(ec1.sign(claims(), headers={"kid": "rsa-1"}))


async def test_unknown_kid_refetches_at_most_once_per_interval(
    auth: Authenticator, jwks: JwksServer, rsa1: SigningKey, clock: FakeClock
) -> None:
    await auth.authenticate(rsa1.sign(claims()))
    stranger = rsa_key("unknown")
    for _ in range(5):
        with pytest.raises(InvalidToken, match="not in the issuer's key set"):
            await auth.authenticate(stranger.sign(claims()))
    # The first unknown kid came right after the initial fetch, inside the interval.
    assert jwks.fetches == 1
    clock.now += 31
    for _ in range(5):
        with pytest.raises(InvalidToken, match="not in the issuer's key set"):
            await auth.authenticate(stranger.sign(claims()))
    assert jwks.fetches == 2


async def test_path_like_kid_is_only_a_lookup_key(
    auth: Authenticator, jwks: JwksServer, rsa1: SigningKey, clock: FakeClock
) -> None:
    clock.now += 100
    for kid in ("../../etc/passwd", "/etc/passwd", "http://127.0.0.1:1/evil", "%2e%2e/x"):
        forged = SigningKey(kid, "RS256", rsa1.private)
        with pytest.raises(InvalidToken, match="not in the issuer's key set"):
            await auth.authenticate(forged.sign(claims()))
        clock.now += 31
    assert jwks.requests
    assert set(jwks.requests) == {"/.well-known/jwks.json"}


async def test_oversized_kid_is_refused(auth: Authenticator, jwks: JwksServer) -> None:
    forged = SigningKey("k" * 300, "RS256", rsa_key("x").private)
    with pytest.raises(InvalidToken, match="kid"):
        await auth.authenticate(forged.sign(claims()))
    assert jwks.fetches == 0


async def test_oversized_token_is_refused_before_parsing(
    auth: Authenticator, jwks: JwksServer, rsa1: SigningKey
) -> None:
    token = rsa1.sign(claims(padding="x" * 9000))
    with pytest.raises(InvalidToken, match="larger than 8192 bytes"):
        await auth.authenticate(token)
    assert jwks.fetches == 0


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c.d", "not a token", "ey!!.ey!!.sig", "e30.e30.e30"]
)
async def test_malformed_tokens(auth: Authenticator, token: str) -> None:
    with pytest.raises(InvalidToken):
        await auth.authenticate(token)


async def test_key_rotation_picks_up_a_new_kid(
    auth: Authenticator,
    jwks: JwksServer,
    rsa1: SigningKey,
    rsa2: SigningKey,
    clock: FakeClock,
) -> None:
    await auth.authenticate(rsa1.sign(claims()))
    jwks.keys = [rsa2.jwk()]
    clock.now += 31
    principal = await auth.authenticate(rsa2.sign(claims(sub="after-rotation")))
    assert principal.subject == "after-rotation"
    assert jwks.fetches == 2
    # The retired key is gone from the new set.
    clock.now += 31
    with pytest.raises(InvalidToken, match="not in the issuer's key set"):
        await auth.authenticate(rsa1.sign(claims()))


async def test_token_without_kid_uses_the_only_key(rsa1: SigningKey) -> None:
    with serve_jwks(rsa1) as server:
        auth = Authenticator(jwks_config(server))
        token = rsa1.sign(claims(), headers={"kid": None})
        assert (await auth.authenticate(token)).subject == "user-1"


async def test_token_without_kid_is_ambiguous_with_several_keys(
    auth: Authenticator, rsa1: SigningKey, rsa2: SigningKey, jwks: JwksServer
) -> None:
    jwks.keys.append(rsa2.jwk())
    with pytest.raises(InvalidToken, match="names no kid"):
        await auth.authenticate(rsa1.sign(claims(), headers={"kid": None}))


async def test_encryption_and_symmetric_keys_in_the_set_are_ignored(rsa1: SigningKey) -> None:
    with serve_jwks() as server:
        server.keys = [
            {**rsa1.jwk(), "use": "enc"},
            {"kty": "oct", "kid": "rsa-1", "k": b64url(rsa1.public_pem().encode())},
        ]
        auth = Authenticator(jwks_config(server))
        with pytest.raises(KeySetUnavailable):
            await auth.authenticate(rsa1.sign(claims()))


async def test_jwks_endpoint_down(rsa1: SigningKey, clock: FakeClock) -> None:
    with serve_jwks(rsa1) as server:
        server.status = 503
        auth = Authenticator(jwks_config(server), clock=clock)
        with pytest.raises(KeySetUnavailable) as caught:
            await auth.authenticate(rsa1.sign(claims()))
        assert caught.value.problem.status == 503
        assert caught.value.headers["Retry-After"] == "30"
        # Within the refresh interval a failed fetch is not repeated.
        with pytest.raises(KeySetUnavailable):
            await auth.authenticate(rsa1.sign(claims()))
        assert server.fetches == 1
        server.status = 200
        clock.now += 31
        assert (await auth.authenticate(rsa1.sign(claims()))).subject == "user-1"


async def test_jwks_endpoint_unreachable() -> None:
    with serve_jwks() as server:
        url = server.url
    # The server is closed now: nothing listens on that port.
    auth = Authenticator(
        AuthConfig(issuer=ISSUER, audience=(AUDIENCE,), jwks_url=url, jwks_timeout_seconds=2)
    )
    with pytest.raises(KeySetUnavailable, match="unavailable"):
        await auth.authenticate(rsa_key("k").sign(claims()))


async def test_stale_keys_serve_while_the_endpoint_is_down(
    auth: Authenticator, jwks: JwksServer, rsa1: SigningKey, clock: FakeClock
) -> None:
    await auth.authenticate(rsa1.sign(claims()))
    jwks.status = 500
    clock.now += 301
    assert (await auth.authenticate(rsa1.sign(claims()))).subject == "user-1"
    clock.now += 3600
    with pytest.raises(KeySetUnavailable):
        await auth.authenticate(rsa1.sign(claims()))


async def test_garbage_key_set_is_unavailable_not_a_crash(rsa1: SigningKey) -> None:
    with serve_jwks() as server:
        server.keys = [{"kty": "RSA", "kid": "rsa-1", "n": "!!", "e": "AQAB"}]
        auth = Authenticator(jwks_config(server))
        with pytest.raises(InvalidToken, match="cannot verify"):
            await auth.authenticate(rsa1.sign(claims()))


async def test_insufficient_scope(auth: Authenticator, rsa1: SigningKey) -> None:
    principal = await auth.authenticate(rsa1.sign(claims(scope="encounter:read")))
    require_scope(principal, "encounter:read")
    with pytest.raises(InsufficientScope) as caught:
        require_scope(principal, "encounter:read", "encounter:write")
    error = caught.value
    assert error.problem.status == 403
    assert error.missing == ("encounter:write",)
    assert error.problem.required_scopes == ("encounter:read", "encounter:write")
    assert error.headers["WWW-Authenticate"] == (
        'Bearer realm="troupe", error="insufficient_scope", '
        'error_description="this needs scope encounter:write", '
        'scope="encounter:read encounter:write"'
    )


async def test_required_scopes_per_action(jwks: JwksServer, rsa1: SigningKey) -> None:
    auth = Authenticator(
        jwks_config(jwks, required_scopes={"encounter.next_turn": ("encounter:write",)})
    )
    reader = await auth.authenticate(rsa1.sign(claims(scope="encounter:read")))
    writer = await auth.authenticate(rsa1.sign(claims(scope="encounter:write")))
    auth.authorize(writer, "encounter.next_turn")
    auth.authorize(reader, "encounter.query")  # no scopes configured: any caller
    with pytest.raises(InsufficientScope):
        auth.authorize(reader, "encounter.next_turn")


def test_scopes_from_scope_and_scp() -> None:
    assert scopes_of({"scope": "a  b"}) == {"a", "b"}
    assert scopes_of({"scp": ["c", "d"]}) == {"c", "d"}
    assert scopes_of({"scp": "e f"}) == {"e", "f"}
    assert scopes_of({"scope": "a", "scp": ["b"]}) == {"a", "b"}
    assert scopes_of({}) == frozenset()
    with pytest.raises(InvalidToken, match="'scp' must be"):
        scopes_of({"scp": [1, 2]})


async def test_custom_tenant_claim(jwks: JwksServer, rsa1: SigningKey) -> None:
    auth = Authenticator(jwks_config(jwks, tenant_claim="https://troupe/tenant"))
    principal = await auth.authenticate(rsa1.sign(claims(**{"https://troupe/tenant": "t-9"})))
    assert principal.tenant == "t-9"


@pytest.mark.parametrize("tenant", ["", "a.b", "x" * 129, 42, ["acme"]])
async def test_unsafe_tenant_values_are_refused(
    auth: Authenticator, rsa1: SigningKey, tenant: object
) -> None:
    with pytest.raises(InvalidToken, match="tenant claim"):
        await auth.authenticate(rsa1.sign(claims(tenant=tenant)))


async def test_missing_and_foreign_credentials(auth: Authenticator) -> None:
    for header in (None, "", "   ", "Basic dXNlcjpwYXNz"):
        with pytest.raises(MissingCredentials) as caught:
            await auth.authenticate_header(header)
        assert caught.value.headers["WWW-Authenticate"] == 'Bearer realm="troupe"'
        assert caught.value.problem.status == 401


async def test_invalid_token_challenge(auth: Authenticator) -> None:
    with pytest.raises(InvalidToken) as caught:
        await auth.authenticate_header("Bearer a.b.c")
    challenge = caught.value.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="troupe", error="invalid_token", error_description="')
    assert caught.value.problem.code == "invalid_token"


async def test_disabled_mode_gives_the_anonymous_principal() -> None:
    auth = Authenticator(AuthConfig(enabled=False))
    assert await auth.authenticate_header(None) is ANONYMOUS
    assert await auth.authenticate_header("Bearer whatever") is ANONYMOUS
    auth.authorize(ANONYMOUS, "anything")
    require_scope(ANONYMOUS, "admin")


def test_principal_is_a_msgspec_struct() -> None:
    principal = Principal(subject="s", issuer="i", scopes=frozenset({"b", "a"}))
    decoded = msgspec.json.decode(msgspec.json.encode(principal), type=Principal)
    assert decoded == principal


# Configuration


def test_from_env_reads_every_variable(tmp_path: Path, rsa1: SigningKey) -> None:
    pem = tmp_path / "issuer.pem"
    pem.write_text(rsa1.public_pem())
    config = AuthConfig.from_env(
        {
            "TROUPE_AUTH_ISSUER": ISSUER,
            "TROUPE_AUTH_AUDIENCE": "a, b",
            "TROUPE_AUTH_PUBLIC_KEY": f"@{pem}",
            "TROUPE_AUTH_ALGORITHMS": "RS256,PS256",
            "TROUPE_AUTH_LEEWAY": "5",
            "TROUPE_AUTH_TENANT_CLAIM": "org_id",
            "TROUPE_AUTH_REQUIRED_SCOPES": '{"encounter.next_turn": "encounter:write admin"}',
        }
    )
    assert config.enabled
    assert config.audience == ("a", "b")
    assert config.public_key_pem == rsa1.public_pem()
    assert config.algorithms == ("RS256", "PS256")
    assert config.leeway_seconds == 5.0
    assert config.tenant_claim == "org_id"
    assert config.required_scopes == {"encounter.next_turn": ("encounter:write", "admin")}


def test_from_env_defaults() -> None:
    config = AuthConfig.from_env(
        {
            "TROUPE_AUTH_ISSUER": ISSUER,
            "TROUPE_AUTH_AUDIENCE": AUDIENCE,
            "TROUPE_AUTH_JWKS_URL": "https://issuer.test/.well-known/jwks.json",
        }
    )
    assert config.algorithms == ("RS256", "ES256")
    assert config.leeway_seconds == 30.0
    assert config.max_token_bytes == 8192
    assert config.tenant_claim == "tenant"


def test_from_env_disabled_and_unconfigured() -> None:
    assert not AuthConfig.from_env({"TROUPE_AUTH_DISABLED": "1"}).enabled
    assert not AuthConfig.from_env({}, allow_unconfigured=True).enabled
    with pytest.raises(AuthConfigError, match="TROUPE_AUTH_DISABLED=1"):
        AuthConfig.from_env({})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TROUPE_AUTH_AUDIENCE": "a", "TROUPE_AUTH_JWKS_URL": "https://i/j"}, "issuer"),
        ({"TROUPE_AUTH_ISSUER": "i", "TROUPE_AUTH_JWKS_URL": "https://i/j"}, "audience"),
        ({"TROUPE_AUTH_ISSUER": "i", "TROUPE_AUTH_AUDIENCE": "a"}, "exactly one"),
        (
            {
                "TROUPE_AUTH_ISSUER": "i",
                "TROUPE_AUTH_AUDIENCE": "a",
                "TROUPE_AUTH_JWKS_URL": "http://issuer.example/jwks",
            },
            "must be https",
        ),
        (
            {
                "TROUPE_AUTH_ISSUER": "i",
                "TROUPE_AUTH_AUDIENCE": "a",
                "TROUPE_AUTH_JWKS_URL": "file:///etc/passwd",
            },
            "must be https",
        ),
        (
            {
                "TROUPE_AUTH_ISSUER": "i",
                "TROUPE_AUTH_AUDIENCE": "a",
                "TROUPE_AUTH_JWKS_URL": "https://i/j",
                "TROUPE_AUTH_LEEWAY": "soon",
            },
            "not a number",
        ),
        (
            {
                "TROUPE_AUTH_ISSUER": "i",
                "TROUPE_AUTH_AUDIENCE": "a",
                "TROUPE_AUTH_JWKS_URL": "https://i/j",
                "TROUPE_AUTH_REQUIRED_SCOPES": "[1]",
            },
            "JSON object",
        ),
        (
            {
                "TROUPE_AUTH_ISSUER": "i",
                "TROUPE_AUTH_AUDIENCE": "a",
                "TROUPE_AUTH_PUBLIC_KEY": "@/nonexistent/key.pem",
            },
            "cannot read",
        ),
    ],
)
def test_from_env_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(AuthConfigError, match=message):
        AuthConfig.from_env(env)


def test_pem_must_be_a_public_key_fitting_the_algorithms(ec1: SigningKey) -> None:
    with pytest.raises(AuthConfigError, match="not a PEM public key"):
        Authenticator(AuthConfig(issuer=ISSUER, audience=(AUDIENCE,), public_key_pem="nope"))
    with pytest.raises(AuthConfigError, match="verifies none"):
        Authenticator(
            AuthConfig(
                issuer=ISSUER,
                audience=(AUDIENCE,),
                public_key_pem=ec1.public_pem(),
                algorithms=("RS256",),
            )
        )


async def test_pem_key_of_another_family_than_the_token(rsa1: SigningKey, ec1: SigningKey) -> None:
    auth = Authenticator(
        AuthConfig(issuer=ISSUER, audience=(AUDIENCE,), public_key_pem=rsa1.public_pem())
    )
    with pytest.raises(InvalidToken, match="does not fit"):
        await auth.authenticate(ec1.sign(claims()))


async def test_pem_certificate_is_accepted(ec1: SigningKey) -> None:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ec1.private.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(ec1.private, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    auth = Authenticator(AuthConfig(issuer=ISSUER, audience=(AUDIENCE,), public_key_pem=pem))
    assert (await auth.authenticate(ec1.sign(claims()))).subject == "user-1"
