"""The bundle loader: canonical hashing, verification, and one precise error per condition."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dispatch.bundles import (
    bundle_sha256,
    canonical_bytes,
    load_bundle,
    seal,
    shipped,
    shipped_files,
)
from actors.dispatch.bundles.loader import MAX_BYTES, read_directory
from actors.dispatch.errors import (
    BundleError,
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
from tests.unit.dispatch.builders import utc

CREATED = utc(2025, 6, 1, 12, 0)


def starter() -> dict[str, bytes]:
    return shipped_files("starter")


def content() -> dict[str, bytes]:
    return {p: d for p, d in starter().items() if p != "manifest.json"}


def manifest_of(files: dict[str, bytes]) -> dict[str, object]:
    data = msgspec.json.decode(files["manifest.json"])
    assert isinstance(data, dict)
    return data


def with_manifest(files: dict[str, bytes], **changes: object) -> dict[str, bytes]:
    return {**files, "manifest.json": msgspec.json.encode({**manifest_of(files), **changes})}


@pytest.mark.parametrize("name", ["starter", "strict"])
def test_shipped_bundles_verify(name: str) -> None:
    bundle = shipped(name)
    assert bundle.sha256 == manifest_of(shipped_files(name))["sha256"]
    assert bundle.rules.approvals.ttl_seconds > 0
    assert "water_leak" in bundle.rules.evidence.templates


def test_the_hash_covers_version_created_at_and_content() -> None:
    base = bundle_sha256("v1", CREATED, content())
    assert bundle_sha256("v2", CREATED, content()) != base
    assert bundle_sha256("v1", utc(2025, 6, 1, 12, 1), content()) != base
    changed = {**content(), "README.md": b"changed\n"}
    assert bundle_sha256("v1", CREATED, changed) != base


def test_created_at_is_hashed_in_utc() -> None:
    chicago_summer = timezone(timedelta(hours=-5))
    same_instant = CREATED.astimezone(chicago_summer)
    assert bundle_sha256("v1", same_instant, content()) == bundle_sha256("v1", CREATED, content())


def test_sizes_frame_the_files_so_bytes_cannot_move_between_them() -> None:
    one = canonical_bytes("v1", CREATED, {"a": b"xy", "b": b""})
    two = canonical_bytes("v1", CREATED, {"a": b"x", "b": b"y"})
    assert one != two
    assert b"file:a\nsize:2\nxy\nfile:b\nsize:0\n\n" in one


def test_line_endings_and_bom_do_not_change_the_hash() -> None:
    lf = content()
    crlf = {p: d.replace(b"\n", b"\r\n") for p, d in lf.items()}
    crlf["policy/nte.json"] = b"\xef\xbb\xbf" + crlf["policy/nte.json"]
    assert bundle_sha256("v1", CREATED, crlf) == bundle_sha256("v1", CREATED, lf)
    assert (
        load_bundle(seal(crlf, version="v1", created_at=CREATED)).sha256
        == load_bundle(seal(lf, version="v1", created_at=CREATED)).sha256
    )


@settings(max_examples=30, deadline=None)
@given(order=st.permutations(sorted(content())), crlf=st.sets(st.sampled_from(sorted(content()))))
def test_hash_is_independent_of_file_order_and_line_endings(
    order: list[str], crlf: set[str]
) -> None:
    original = content()
    shuffled = {p: original[p].replace(b"\n", b"\r\n") if p in crlf else original[p] for p in order}
    assert bundle_sha256("v1", CREATED, shuffled) == bundle_sha256("v1", CREATED, original)
    sealed = seal(shuffled, version="v1", created_at=CREATED)
    assert load_bundle(sealed).sha256 == bundle_sha256("v1", CREATED, original)


def test_missing_manifest() -> None:
    with pytest.raises(MissingManifest) as caught:
        load_bundle(content())
    assert caught.value.code == "bundle.missing_manifest"


@pytest.mark.parametrize(
    "manifest",
    [b"{not json", b"[]", b'{"version": "v1"}', b'{"format": 1, "version": "v1"}'],
)
def test_malformed_manifest(manifest: bytes) -> None:
    with pytest.raises(MalformedManifest) as caught:
        load_bundle({**starter(), "manifest.json": manifest})
    assert caught.value.path == "manifest.json"


@pytest.mark.parametrize("found", [2, "1", True, None])
def test_unknown_format_version(found: object) -> None:
    with pytest.raises(UnsupportedBundleFormat) as caught:
        load_bundle(with_manifest(starter(), format=found))
    assert caught.value.code == "bundle.unknown_format"
    assert caught.value.found == found


def test_tampered_content_names_the_file_and_digests() -> None:
    files = starter()
    files["policy/nte.json"] = files["policy/nte.json"].replace(b"50000", b"5000000")
    with pytest.raises(TamperedBundle) as caught:
        load_bundle(files)
    assert caught.value.path == "policy/nte.json"
    assert caught.value.expected == manifest_of(files)["files"]["policy/nte.json"]  # type: ignore[index]
    assert caught.value.actual != caught.value.expected
    assert caught.value.code == "bundle.tampered"


def test_added_or_removed_files_are_tampering() -> None:
    with pytest.raises(TamperedBundle, match=r"not listed in the manifest: policy/extra\.json"):
        load_bundle({**starter(), "policy/extra.json": b"{}"})
    files = starter()
    del files["policy/nte.json"]
    with pytest.raises(TamperedBundle, match=r"missing: policy/nte\.json"):
        load_bundle(files)


def test_wrong_declared_hash() -> None:
    with pytest.raises(BundleHashMismatch) as caught:
        load_bundle(with_manifest(starter(), sha256="0" * 64))
    assert caught.value.source == "manifest"
    assert caught.value.expected == "0" * 64
    assert caught.value.actual == shipped("starter").sha256


def test_an_edited_version_no_longer_matches_the_hash() -> None:
    with pytest.raises(BundleHashMismatch) as caught:
        load_bundle(with_manifest(starter(), version="starter-2099.01.0"))
    assert caught.value.code == "bundle.wrong_hash"


def test_expected_hash_from_the_caller() -> None:
    good = shipped("starter").sha256
    assert load_bundle(starter(), expected_sha256=good).sha256 == good
    with pytest.raises(BundleHashMismatch) as caught:
        load_bundle(starter(), expected_sha256="f" * 64)
    assert caught.value.source == "request"


def test_malformed_rules_name_file_and_path() -> None:
    bad = {**content(), "policy/approvals.json": b'{"ttl_seconds": 10, "approver_principals": []}'}
    with pytest.raises(MalformedRules) as caught:
        load_bundle(seal(bad, version="v1", created_at=CREATED))
    assert caught.value.path == "policy/approvals.json"
    assert "$.ttl_seconds" in str(caught.value)
    typo = {**content(), "policy/nte.json": b'{"default": {"absolute_cent": 1}}'}
    with pytest.raises(MalformedRules, match="unknown field `absolute_cent`"):
        load_bundle(seal(typo, version="v1", created_at=CREATED))
    broken = {**content(), "policy/evidence.json": b'{"templates": '}
    with pytest.raises(MalformedRules, match=r"policy/evidence\.json"):
        load_bundle(seal(broken, version="v1", created_at=CREATED))


def test_a_missing_rules_file() -> None:
    files = content()
    del files["policy/quiet_hours.json"]
    with pytest.raises(MissingRulesFile) as caught:
        load_bundle(seal(files, version="v1", created_at=CREATED))
    assert caught.value.path == "policy/quiet_hours.json"


@pytest.mark.parametrize(
    "path", ["../escape.json", "/etc/passwd", ".hidden", "a//b", "a\\b.json", "dir/.git/x", ""]
)
def test_unsafe_paths(path: str) -> None:
    with pytest.raises(InvalidBundlePath):
        load_bundle({**starter(), path: b"{}"})


def test_binary_and_oversized_files() -> None:
    with pytest.raises(MalformedBundle, match="not UTF-8"):
        seal({**content(), "logo.png": b"\x89PNG\r\n\x1a\n\xff"}, version="v1", created_at=CREATED)
    with pytest.raises(BundleTooLarge):
        load_bundle({**starter(), "big.txt": b"x" * (MAX_BYTES + 1)})
    with pytest.raises(BundleTooLarge):
        load_bundle({**starter(), **{f"f{i}.txt": b"" for i in range(70)}})


def test_every_bundle_error_has_a_distinct_code() -> None:
    classes: list[type[BundleError]] = [
        MissingManifest,
        InvalidBundlePath,
        BundleTooLarge,
        MalformedManifest,
        MissingRulesFile,
        MalformedRules,
        UnsupportedBundleFormat,
        TamperedBundle,
        BundleHashMismatch,
    ]
    codes = [c.code for c in classes]
    assert len(set(codes)) == len(codes)
    assert all(issubclass(c, BundleError) for c in classes)


def test_reading_a_directory(tmp_path: Path) -> None:
    for path, data in starter().items():
        target = tmp_path / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    (tmp_path / ".DS_Store").write_bytes(b"\x00")
    assert read_directory(tmp_path) == starter()
    with pytest.raises(MalformedBundle, match="is not a directory"):
        read_directory(tmp_path / "absent")
