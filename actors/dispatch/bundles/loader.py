"""Policy bundle loading: safe paths, normalized bytes, the canonical hash, verification."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from actors.dispatch.errors import (
    BundleHashMismatch,
    BundleTooLarge,
    InvalidBundlePath,
    MalformedBundle,
    MalformedManifest,
    MalformedRules,
    MissingManifest,
    MissingRulesFile,
    TamperedBundle,
    UnsupportedBundleFormat,
)
from schemas.dispatch.bundle import (
    APPROVALS_FILE,
    BUNDLE_FORMAT,
    EVIDENCE_FILE,
    MANIFEST,
    NTE_FILE,
    QUIET_HOURS_FILE,
    ApprovalPolicy,
    BundleManifest,
    BundleRules,
    EvidencePolicy,
    NtePolicy,
    QuietHoursPolicy,
)

MAX_FILES = 64
MAX_BYTES = 512 * 1024
"""Kept under NATS's default 1 MiB payload once base64-encoded in an activate command."""
HEADER = b"troupe-policy-bundle\n"

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_BOM = b"\xef\xbb\xbf"

T = TypeVar("T")


class Bundle(msgspec.Struct, frozen=True, kw_only=True):
    """A verified bundle: its identity, its files exactly as received, and its parsed rules."""

    version: str
    created_at: datetime
    sha256: str
    files: dict[str, bytes]
    rules: BundleRules


def check_path(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path of ASCII segments, else raise."""
    segments = path.split("/")
    if len(path) > 200 or not all(_SEGMENT.match(s) for s in segments):
        raise InvalidBundlePath(
            "paths are relative, '/'-separated, of letters, digits, '.', '_' or '-', "
            "and no segment starts with '.'",
            path=path,
        )
    return path


def normalize_bytes(path: str, data: bytes) -> bytes:
    """The bytes a file contributes to the hash: UTF-8, without a BOM, with LF line endings."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedBundle(f"not UTF-8 text (byte {err.start})", path=path) from err
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


def file_digest(normalized: bytes) -> str:
    """sha256 hex of a file's normalized bytes (what the manifest lists)."""
    return hashlib.sha256(normalized).hexdigest()


def format_created_at(created_at: datetime) -> str:
    """``created_at`` in UTC, RFC 3339 with a ``Z``: the form the hash covers."""
    if created_at.tzinfo is None:
        raise ValueError("created_at must carry a time zone")
    return created_at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def canonical_bytes(version: str, created_at: datetime, content: Mapping[str, bytes]) -> bytes:
    """The canonical serialisation of a bundle; ``content`` excludes the manifest.

    A fixed header, ``format``, ``version`` and ``created_at`` lines, then for
    each file in byte order of its path: ``file:<path>``, ``size:<n>`` and the
    n normalized bytes, each followed by a newline. The explicit sizes make
    the framing unambiguous whatever the files contain.
    """
    parts = [
        HEADER,
        f"format:{BUNDLE_FORMAT}\n".encode(),
        f"version:{version}\n".encode(),
        f"created_at:{format_created_at(created_at)}\n".encode(),
    ]
    for path in sorted(content, key=lambda p: p.encode()):
        data = normalize_bytes(check_path(path), content[path])
        parts += [f"file:{path}\n".encode(), f"size:{len(data)}\n".encode(), data, b"\n"]
    return b"".join(parts)


def bundle_sha256(version: str, created_at: datetime, content: Mapping[str, bytes]) -> str:
    """sha256 hex of :func:`canonical_bytes`."""
    return hashlib.sha256(canonical_bytes(version, created_at, content)).hexdigest()


def seal(content: Mapping[str, bytes], *, version: str, created_at: datetime) -> dict[str, bytes]:
    """Add a manifest that seals ``content`` (every file but the manifest): the release step."""
    if MANIFEST in content:
        raise MalformedBundle("seal takes the content without a manifest", path=MANIFEST)
    _check_shape(content)
    digests = {p: file_digest(normalize_bytes(p, content[p])) for p in sorted(content)}
    manifest = BundleManifest(
        format=BUNDLE_FORMAT,
        version=version,
        created_at=created_at,
        sha256=bundle_sha256(version, created_at, content),
        files=digests,
    )
    # Validate through the schema so a bad version string fails here, not at load time.
    manifest = msgspec.convert(msgspec.to_builtins(manifest), BundleManifest)
    text = msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    return {**dict(content), MANIFEST: text}


def load_bundle(files: Mapping[str, bytes], *, expected_sha256: str | None = None) -> Bundle:
    """Verify and parse a bundle; every failure raises its own ``BundleError`` subclass.

    Checks, in order: file count and size, paths, manifest presence, format,
    manifest schema, UTF-8, file set and per-file digests (``TamperedBundle``),
    the declared hash and then ``expected_sha256`` (``BundleHashMismatch``),
    and the rule files' schemas (``MissingRulesFile`` / ``MalformedRules``).
    """
    _check_shape(files)
    if MANIFEST not in files:
        raise MissingManifest("the bundle has no manifest.json", path=MANIFEST)
    manifest = _manifest(files[MANIFEST])
    content = {p: normalize_bytes(p, data) for p, data in files.items() if p != MANIFEST}
    listed = set(manifest.files)
    for path in sorted(listed):
        check_path(path)
    if MANIFEST in listed:
        raise MalformedManifest("the manifest cannot list itself", path=MANIFEST)
    missing, unlisted = sorted(listed - set(content)), sorted(set(content) - listed)
    if missing:
        raise TamperedBundle(f"files listed in the manifest are missing: {', '.join(missing)}")
    if unlisted:
        raise TamperedBundle(f"files not listed in the manifest: {', '.join(unlisted)}")
    for path in sorted(content):
        actual = file_digest(content[path])
        if actual != manifest.files[path]:
            raise TamperedBundle(
                f"{path} does not match its manifest digest",
                path=path,
                expected=manifest.files[path],
                actual=actual,
            )
    computed = bundle_sha256(manifest.version, manifest.created_at, content)
    if computed != manifest.sha256:
        raise BundleHashMismatch(source="manifest", expected=manifest.sha256, actual=computed)
    if expected_sha256 is not None and computed != expected_sha256:
        raise BundleHashMismatch(source="request", expected=expected_sha256, actual=computed)
    rules = BundleRules(
        quiet_hours=_rules(content, QUIET_HOURS_FILE, QuietHoursPolicy),
        nte=_rules(content, NTE_FILE, NtePolicy),
        evidence=_rules(content, EVIDENCE_FILE, EvidencePolicy),
        approvals=_rules(content, APPROVALS_FILE, ApprovalPolicy),
    )
    return Bundle(
        version=manifest.version,
        created_at=manifest.created_at,
        sha256=computed,
        files=dict(files),
        rules=rules,
    )


def read_directory(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (dot-files skipped) as path -> bytes, for ``load_bundle``."""
    if not root.is_dir():
        raise MalformedBundle(f"{root} is not a directory")
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    }


def _check_shape(files: Mapping[str, bytes]) -> None:
    if len(files) > MAX_FILES:
        raise BundleTooLarge(f"{len(files)} files; a bundle holds at most {MAX_FILES}")
    total = sum(len(data) for data in files.values())
    if total > MAX_BYTES:
        raise BundleTooLarge(f"{total} bytes; a bundle holds at most {MAX_BYTES}")
    for path in files:
        check_path(path)


def _manifest(data: bytes) -> BundleManifest:
    try:
        raw: Any = msgspec.json.decode(data)
    except msgspec.DecodeError as err:
        raise MalformedManifest(f"not JSON: {err}", path=MANIFEST) from err
    if not isinstance(raw, dict):
        raise MalformedManifest("expected a JSON object", path=MANIFEST)
    if "format" not in raw:
        raise MalformedManifest("the manifest has no format", path=MANIFEST)
    if raw["format"] != BUNDLE_FORMAT or isinstance(raw["format"], bool):
        raise UnsupportedBundleFormat(raw["format"], BUNDLE_FORMAT)
    try:
        return msgspec.convert(raw, BundleManifest)
    except msgspec.ValidationError as err:
        raise MalformedManifest(str(err), path=MANIFEST) from err


def _rules(content: Mapping[str, bytes], path: str, kind: type[T]) -> T:
    if path not in content:
        raise MissingRulesFile("the bundle format requires this rule file", path=path)
    try:
        return msgspec.json.decode(content[path], type=kind)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise MalformedRules(str(err), path=path) from err
