"""Who may serve without authentication: loopback with a warning, elsewhere only if insecure."""

from __future__ import annotations

import socket

import pytest

from gateway.auth import AuthConfigError
from gateway.serve import ExposureError, authenticator_for, is_loopback, port_free
from tests.support.jwks import rsa_key

CONFIGURED = {
    "TROUPE_AUTH_ISSUER": "https://issuer.test/",
    "TROUPE_AUTH_AUDIENCE": "troupe-api",
    "TROUPE_AUTH_JWKS_URL": "https://issuer.test/.well-known/jwks.json",
}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_loopback_without_auth_runs_and_says_so() -> None:
    authenticator, warning = authenticator_for("127.0.0.1", insecure=False, env={})
    assert not authenticator.enabled
    assert warning is not None
    assert "AUTH IS OFF" in warning


@pytest.mark.parametrize("env", [{}, {"TROUPE_AUTH_DISABLED": "1", **CONFIGURED}])
def test_a_public_address_without_auth_is_refused(env: dict[str, str]) -> None:
    with pytest.raises(ExposureError, match="--insecure"):
        authenticator_for("0.0.0.0", insecure=False, env=env)


def test_insecure_allows_it_loudly() -> None:
    authenticator, warning = authenticator_for("0.0.0.0", insecure=True, env={})
    assert not authenticator.enabled
    assert warning is not None
    assert "--insecure" in warning


@pytest.mark.parametrize("host", ["0.0.0.0", "127.0.0.1"])
def test_configured_auth_serves_anywhere_without_a_warning(host: str) -> None:
    authenticator, warning = authenticator_for(host, insecure=False, env=CONFIGURED)
    assert authenticator.enabled
    assert warning is None


def test_a_public_key_configures_auth_too() -> None:
    env = {
        "TROUPE_AUTH_ISSUER": "https://issuer.test/",
        "TROUPE_AUTH_AUDIENCE": "troupe-api",
        "TROUPE_AUTH_PUBLIC_KEY": rsa_key("k").public_pem(),
    }
    authenticator, warning = authenticator_for("0.0.0.0", insecure=False, env=env)
    assert authenticator.enabled
    assert warning is None


def test_a_partial_configuration_is_refused_even_on_loopback() -> None:
    with pytest.raises(AuthConfigError, match="TROUPE_AUTH_AUDIENCE"):
        authenticator_for("127.0.0.1", insecure=True, env={"TROUPE_AUTH_ISSUER": "https://i/"})


def test_port_free() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert not port_free("127.0.0.1", port)
