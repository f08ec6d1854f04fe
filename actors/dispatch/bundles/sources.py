"""Where bundles live: a directory, one archive file, or the JetStream object store.

Every source hands back verified files or raises a ``BundleError``: a bundle that is not
intact is never passed on. The object store keeps one object per bundle, named by its
sha256, holding a ``BundleArchive``; NATS checks the object's own SHA-256 digest on read
(``DigestMismatchError`` becomes ``TamperedBundle``) and the bundle is then verified
against its manifest and, when asked for by hash, against that hash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import msgspec
from nats.js import JetStreamContext
from nats.js import api as js_api
from nats.js.errors import BucketNotFoundError, DigestMismatchError, NotFoundError
from nats.js.object_store import ObjectStore

from actors.dispatch.bundles.loader import Bundle, load_bundle, read_directory
from actors.dispatch.errors import BundleError, MalformedBundle, TamperedBundle
from schemas.dispatch.bundle import BundleArchive

BUCKET = "dispatch-bundles"
"""The object store bucket bundles are uploaded to."""
OBJECT_PREFIX = "object:"
"""A bundle reference naming an object: ``object:<sha256>`` or ``object:<version>``."""

_ARCHIVE = msgspec.json.Decoder(BundleArchive)
_ENCODER = msgspec.json.Encoder()


class StoredBundle(msgspec.Struct, frozen=True, kw_only=True):
    """A bundle as the object store lists it."""

    name: str
    """The object name: the bundle's sha256."""
    version: str
    size: int
    digest: str
    """The object store's own digest of the archive (``SHA-256=<base64url>``)."""
    modified: datetime | None = None


class UnknownBundleObject(BundleError):
    """Raised when no object in the bundle bucket has the requested hash or version."""

    code = "bundle.unknown_object"

    def __init__(self, ref: str, known: list[str]) -> None:
        listed = ", ".join(known) or "none"
        super().__init__(
            f"no bundle {ref!r} in the object store bucket {BUCKET} (known: {listed}); "
            "upload it with `troupe dispatch bundle upload`"
        )
        self.ref = ref
        self.known = known


def archive(files: Mapping[str, bytes]) -> bytes:
    """One JSON document holding every file of a bundle."""
    return _ENCODER.encode(BundleArchive(files=dict(files)))


def unarchive(data: bytes) -> dict[str, bytes]:
    """The files of an archive, or ``MalformedBundle``."""
    try:
        return dict(_ARCHIVE.decode(data).files)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise MalformedBundle(f"not a bundle archive: {err}") from err


def read_path(path: Path) -> dict[str, bytes]:
    """A bundle directory, or an archive file; the files are not verified here."""
    if path.is_dir():
        return read_directory(path)
    if path.is_file():
        return unarchive(path.read_bytes())
    raise MalformedBundle(f"{path} is neither a bundle directory nor an archive file")


async def bucket(js: JetStreamContext, *, create: bool = False) -> ObjectStore:
    """The bundle bucket (created on first upload)."""
    try:
        return await js.object_store(BUCKET)
    except BucketNotFoundError:
        if not create:
            raise UnknownBundleObject("(any)", []) from None
        return await js.create_object_store(
            BUCKET,
            config=js_api.ObjectStoreConfig(
                description="Verified dispatch policy bundles, one object per bundle sha256.",
                storage=js_api.StorageType.FILE,
            ),
        )


async def upload(js: JetStreamContext, files: Mapping[str, bytes]) -> StoredBundle:
    """Verify a bundle and store it under its sha256 (an identical upload changes nothing)."""
    bundle = load_bundle(files)
    store = await bucket(js, create=True)
    data = archive(bundle.files)
    try:
        info = await store.get_info(bundle.sha256)
    except NotFoundError:
        info = None
    if info is None or info.deleted:
        info = await store.put(
            bundle.sha256,
            data,
            meta=js_api.ObjectMeta(name=bundle.sha256, description=bundle.version),
        )
    return _stored(info)


async def listing(js: JetStreamContext) -> list[StoredBundle]:
    """Every bundle in the bucket, newest first (empty when nothing was uploaded)."""
    try:
        store = await bucket(js)
        infos = await store.list()
    except (UnknownBundleObject, NotFoundError):
        return []
    found = [_stored(i) for i in infos if not i.deleted]
    return sorted(found, key=lambda s: (s.modified is None, s.modified), reverse=True)


async def download(js: JetStreamContext, ref: str) -> Bundle:
    """The verified bundle an object reference names (``<sha256>`` or ``<version>``)."""
    ref = ref.removeprefix(OBJECT_PREFIX)
    stored = await listing(js)
    match = next((s for s in stored if s.name == ref), None)
    by_hash = match is not None
    if match is None:
        match = next((s for s in stored if s.version == ref), None)
    if match is None:
        raise UnknownBundleObject(ref, [f"{s.version} ({s.name})" for s in stored])
    store = await bucket(js)
    try:
        result = await store.get(match.name)
    except DigestMismatchError as err:
        raise TamperedBundle(f"object {match.name} does not match its stored digest") from err
    files = unarchive(bytes(result.data or b""))
    # The object name is the hash the bundle was uploaded as: a bundle that does not hash to
    # its own name was replaced underneath.
    bundle = load_bundle(files, expected_sha256=match.name)
    if by_hash and bundle.sha256 != ref:
        raise TamperedBundle(f"object {ref} holds bundle {bundle.sha256}")
    return bundle


async def resolve_source(js: JetStreamContext | None, ref: str) -> Bundle:
    """A verified bundle from ``object:<sha256|version>``, a directory or an archive file."""
    if ref.startswith(OBJECT_PREFIX):
        if js is None:
            raise MalformedBundle(f"{ref}: reading the object store needs a NATS connection")
        return await download(js, ref)
    return load_bundle(read_path(Path(ref)))


def _stored(info: js_api.ObjectInfo) -> StoredBundle:
    modified: datetime | None = None
    raw = info.mtime
    if isinstance(raw, str) and raw:
        try:
            modified = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            modified = None
    return StoredBundle(
        name=info.name,
        version=info.description or "",
        size=int(info.size or 0),
        digest=info.digest or "",
        modified=modified,
    )


__all__ = [
    "BUCKET",
    "OBJECT_PREFIX",
    "StoredBundle",
    "UnknownBundleObject",
    "archive",
    "bucket",
    "download",
    "listing",
    "read_path",
    "resolve_source",
    "unarchive",
    "upload",
]
