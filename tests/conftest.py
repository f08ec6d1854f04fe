"""Shared fixtures: real nats-servers from the wheel, fresh PostgreSQL and SQLite databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from actors.kernel import migrate
from actors.kernel.embedded import EmbeddedNats
from tests.support.databases import PostgresTemplate, start_container


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A fresh JetStream server on a free port with a temp file store; tests may kill it."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    """One migrated template database per run; dropped at the end."""
    if os.environ.get("TROUPE_TEST_POSTGRES") == "0":
        pytest.skip("TROUPE_TEST_POSTGRES=0: PostgreSQL tests disabled")
    template = PostgresTemplate()
    container = None
    try:
        template.create()
    except OSError as exc:
        # No server where we looked: a Docker engine, if one answers, provides one.
        container = None if os.environ.get("TROUPE_TEST_DATABASE_URL") else start_container()
        if container is None:
            pytest.fail(
                f"PostgreSQL is not reachable ({exc}); start it or point "
                "TROUPE_TEST_DATABASE_URL at one (TROUPE_TEST_POSTGRES=0 skips these tests)"
            )
        os.environ["TROUPE_TEST_DATABASE_URL"] = container[0]
        template.create()
    try:
        yield template
    finally:
        template.destroy()
        if container is not None:
            container[1]()


@pytest.fixture
def postgres_url(postgres_template: PostgresTemplate) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    url = postgres_template.clone()
    try:
        yield url
    finally:
        postgres_template.drop(url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite database for one test."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'troupe.db'}"
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The same test on both backends."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url
