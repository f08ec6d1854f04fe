"""Errors of the dispatch library: one class per condition, each with a stable ``code``."""

from __future__ import annotations

from typing import ClassVar


class DispatchError(Exception):
    """Raised when the dispatch library refuses its input; base of every dispatch error."""

    code: ClassVar[str] = "dispatch.error"


# Normalization ---------------------------------------------------------------


class NormalizationError(DispatchError):
    """Raised when a command cannot become a DispatchCommand; nothing is decided."""

    code: ClassVar[str] = "normalize.invalid"


class MissingField(NormalizationError):
    """Raised when a field every dispatch command needs (actor, tenant, ...) is absent."""

    code: ClassVar[str] = "normalize.missing_field"

    def __init__(self, field: str, hint: str) -> None:
        super().__init__(f"{field} is required: {hint}")
        self.field = field


class UnknownIntent(NormalizationError):
    """Raised when a command or intent is not one the tickets actor takes."""

    code: ClassVar[str] = "normalize.unknown_intent"

    def __init__(self, intent: str) -> None:
        super().__init__(f"{intent!r} is not a ticket command")
        self.intent = intent


class InvalidParameters(NormalizationError):
    """Raised when parameters do not match the intent's schema (the path is in the message)."""

    code: ClassVar[str] = "normalize.invalid_parameters"

    def __init__(self, intent: str, detail: str) -> None:
        super().__init__(f"{intent}: {detail}")
        self.intent = intent
        self.detail = detail


class TicketMismatch(NormalizationError):
    """Raised when a command names a ticket other than the one it is addressed to."""

    code: ClassVar[str] = "normalize.ticket_mismatch"

    def __init__(self, field: str, named: str, addressed: str) -> None:
        super().__init__(f"{field} names ticket {named!r} but the command is for {addressed!r}")
        self.field = field
        self.named = named
        self.addressed = addressed


# Bundles ----------------------------------------------------------------------


class BundleError(DispatchError):
    """Raised when a policy bundle cannot be used; the active bundle stays as it was."""

    code: ClassVar[str] = "bundle.invalid"


class MalformedBundle(BundleError):
    """Raised when a bundle's files are not the shape the format requires."""

    code: ClassVar[str] = "bundle.malformed"

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message if path is None else f"{path}: {message}")
        self.path = path


class MissingManifest(MalformedBundle):
    """Raised when a bundle has no manifest.json."""

    code: ClassVar[str] = "bundle.missing_manifest"


class InvalidBundlePath(MalformedBundle):
    """Raised when a file path is absolute, climbs out ('..'), or uses unsafe characters."""

    code: ClassVar[str] = "bundle.invalid_path"


class BundleTooLarge(MalformedBundle):
    """Raised when a bundle exceeds the file-count or byte limits."""

    code: ClassVar[str] = "bundle.too_large"


class MalformedManifest(MalformedBundle):
    """Raised when manifest.json is not valid JSON or not the manifest schema."""

    code: ClassVar[str] = "bundle.malformed_manifest"


class MissingRulesFile(MalformedBundle):
    """Raised when a rule file the format requires is absent."""

    code: ClassVar[str] = "bundle.missing_rules"


class MalformedRules(MalformedBundle):
    """Raised when a rule file is not valid JSON or breaks its schema."""

    code: ClassVar[str] = "bundle.malformed_rules"


class UnsupportedBundleFormat(BundleError):
    """Raised when the manifest declares a bundle format this code does not know."""

    code: ClassVar[str] = "bundle.unknown_format"

    def __init__(self, found: object, supported: int) -> None:
        super().__init__(f"bundle format {found!r} is not supported (this code reads {supported})")
        self.found = found
        self.supported = supported


class TamperedBundle(BundleError):
    """Raised when file contents or the file set differ from the digests the manifest lists."""

    code: ClassVar[str] = "bundle.tampered"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        expected: str | None = None,
        actual: str | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual


class BundleHashMismatch(BundleError):
    """Raised when the computed bundle hash differs from the declared or the expected one."""

    code: ClassVar[str] = "bundle.wrong_hash"

    def __init__(self, *, source: str, expected: str, actual: str) -> None:
        super().__init__(
            f"bundle hash is {actual} but the {source} says {expected}; "
            "re-seal the bundle or check which bundle was meant"
        )
        self.source = source
        self.expected = expected
        self.actual = actual


class UnknownBundleVersion(BundleError):
    """Raised when activation names a version the tenant never activated."""

    code: ClassVar[str] = "bundle.unknown_version"

    def __init__(self, version: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none"
        super().__init__(
            f"bundle version {version!r} is unknown to this tenant (known: {listed}); "
            "send its files to activate it"
        )
        self.version = version
        self.known = known


class BundleVersionConflict(BundleError):
    """Raised when a version string is reused for different content."""

    code: ClassVar[str] = "bundle.version_conflict"

    def __init__(self, version: str, known_sha256: str, new_sha256: str) -> None:
        super().__init__(
            f"bundle version {version!r} was {known_sha256} and is now {new_sha256}; "
            "give changed content a new version"
        )
        self.version = version
        self.known_sha256 = known_sha256
        self.new_sha256 = new_sha256


# Sending ----------------------------------------------------------------------


class RequestMismatch(DispatchError):
    """Raised when a request id is reused for a different command; ``differences`` say how.

    Each difference is ``(path, recorded, requested)``: the JSON path in the normalized
    command (``$.parameters.nte.cents``), the value recorded first, and the one sent now.
    """

    code: ClassVar[str] = "request.mismatch"

    def __init__(
        self,
        request_id: str,
        differences: list[tuple[str, object, object]],
        *,
        decision_id: str | None = None,
    ) -> None:
        paths = ", ".join(path for path, _, _ in differences) or "the command"
        super().__init__(
            f"request id {request_id} was already used for a different command "
            f"(differs at {paths}); send the original again or use a new request id"
        )
        self.request_id = request_id
        self.differences = differences
        self.decision_id = decision_id

    def details(self) -> dict[str, object]:
        """Machine-readable conflict details (what the gateway returns with its 409)."""
        return {
            "request_id": self.request_id,
            "decision_id": self.decision_id,
            "differences": [
                {"path": path, "recorded": recorded, "requested": requested}
                for path, recorded, requested in self.differences
            ],
        }


class NoOutcome(DispatchError):
    """Raised when a command's outcome did not arrive in time; the command stays stored."""

    code: ClassVar[str] = "request.no_outcome"

    def __init__(self, request_id: str, seconds: float) -> None:
        super().__init__(
            f"no outcome for request {request_id} within {seconds:g}s; it is stored and will be "
            "applied once its actor runs: ask again later with the same request id"
        )
        self.request_id = request_id
        self.seconds = seconds
