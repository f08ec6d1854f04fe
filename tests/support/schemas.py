"""Official JSON schemas for tests, fetched once from their registry package and cached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Final

import jsonschema
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource

ROOT: Final = Path(__file__).resolve().parents[2]
CACHE: Final = ROOT / ".troupe" / "cache" / "schemas"

ASYNCAPI_SPECS_PACKAGE: Final = "@asyncapi/specs"
ASYNCAPI_SPECS_VERSION: Final = "6.11.1"
"""The npm release of the AsyncAPI specification schemas; bump it on purpose."""


class SchemaUnavailable(RuntimeError):
    """Raised when an official schema is neither cached nor obtainable from its package."""


def _npm_pack(package: str, version: str, into: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise SchemaUnavailable(
            f"npm is not installed, so {package}@{version} cannot be fetched; install Node.js "
            f"and npm, or place the schema under {CACHE} yourself"
        )
    try:
        result = subprocess.run(
            [npm, "pack", f"{package}@{version}", "--silent", "--pack-destination", str(into)],
            cwd=into,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SchemaUnavailable(f"npm pack {package}@{version} timed out") from exc
    if result.returncode != 0:
        raise SchemaUnavailable(
            f"npm pack {package}@{version} failed ({result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    tarballs = sorted(into.glob("*.tgz"))
    if len(tarballs) != 1:
        raise SchemaUnavailable(f"npm pack {package}@{version} produced {len(tarballs)} tarballs")
    return tarballs[0]


def asyncapi_schema(version: str = "3.0.0", *, cache: Path = CACHE) -> dict[str, Any]:
    """The official AsyncAPI ``version`` JSON schema (a bundle with every definition inside).

    Fetched with ``npm pack`` on first use and kept under ``cache``.
    """
    target = cache / f"asyncapi-{version}-specs-{ASYNCAPI_SPECS_VERSION}.json"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as work:
            tarball = _npm_pack(ASYNCAPI_SPECS_PACKAGE, ASYNCAPI_SPECS_VERSION, Path(work))
            member = f"package/schemas/{version}.json"
            with tarfile.open(tarball, "r:gz") as archive:
                try:
                    extracted = archive.extractfile(member)
                except KeyError:
                    extracted = None
                if extracted is None:
                    raise SchemaUnavailable(
                        f"{ASYNCAPI_SPECS_PACKAGE}@{ASYNCAPI_SPECS_VERSION} has no {member}"
                    )
                data = extracted.read()
            json.loads(data)  # refuse to cache anything that is not JSON
            staged = Path(work) / target.name
            staged.write_bytes(data)
            # Atomic, so parallel test runs never read a half-written file.
            os.replace(staged, target)
    schema: dict[str, Any] = json.loads(target.read_text())
    return schema


def _no_remote(uri: str) -> Resource[Any]:
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


def validator_for_bundle(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A validator whose ``$ref``s resolve inside the bundle and never over the network.

    The bundle's definitions each carry their own ``$id``; registering the root
    resource lets ``referencing`` crawl them, and any reference left over fails
    loudly instead of being fetched.
    """
    resource = Resource.from_contents(schema)
    empty: Registry[Any] = Registry(retrieve=_no_remote)  # type: ignore[call-arg]
    registry = empty.with_resource(schema["$id"], resource).crawl()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    validator: jsonschema.protocols.Validator = cls(schema, registry=registry)
    return validator
