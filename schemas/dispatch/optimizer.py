"""The optimizer contract: rank technicians for a ticket (recommend only, nothing is written)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from schemas.base import Key, PositiveInt, Text
from schemas.dispatch.common import AwareDatetime, GeoPoint, Sha256Hex, TimeWindow, Token

Weight = Annotated[int, Meta(ge=0, le=1000)]
Points = Annotated[int, Meta(ge=0, le=10_000)]
"""A score in basis points: 10 000 is perfect."""


class TechnicianCandidate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One technician the optimizer may recommend."""

    technician_id: Key
    skills: tuple[Token, ...]
    location: GeoPoint
    availability: tuple[TimeWindow, ...]
    current_load: Annotated[int, Meta(ge=0)]
    """Open jobs assigned now."""
    max_load: PositiveInt = 8


class ScoringWeights(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Relative weights of the four components; only their ratios matter."""

    skills: Weight = 25
    distance: Weight = 35
    availability: Weight = 25
    load: Weight = 15

    def __post_init__(self) -> None:
        if self.skills + self.distance + self.availability + self.load == 0:
            raise ValueError("at least one scoring weight must be positive")


class OptimizationInput(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="type",
    tag="dispatch.optimization_input.v1",
):
    """A ticket's needs and the candidates to rank."""

    ticket_id: Key
    site: GeoPoint
    window: TimeWindow
    """When the visit should happen."""
    candidates: tuple[TechnicianCandidate, ...]
    required_skills: tuple[Token, ...] = ()
    preferred_skills: tuple[Token, ...] = ()
    min_overlap_minutes: Annotated[int, Meta(ge=1, le=24 * 60)] = 60
    """A candidate must be free this long inside the window (or the whole window if shorter)."""
    max_distance_km: Annotated[float, Meta(gt=0, le=20_000)] = 150.0
    weights: ScoringWeights = ScoringWeights()
    limit: Annotated[int, Meta(ge=1, le=100)] = 5

    def __post_init__(self) -> None:
        ids = [c.technician_id for c in self.candidates]
        if len(set(ids)) != len(ids):
            raise ValueError("candidate technician ids repeat")


class ScoreComponents(msgspec.Struct, frozen=True, kw_only=True):
    """Each component in basis points before weighting."""

    skills: Points
    distance: Points
    availability: Points
    load: Points


class RankedCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A recommended technician with the reasons for its place."""

    rank: PositiveInt
    technician_id: Key
    score: Points
    components: ScoreComponents
    distance_m: int
    earliest_start: AwareDatetime
    overlap_minutes: int
    current_load: int
    explanation: tuple[Text, ...]


class ExcludedCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A technician who cannot take the ticket, and why."""

    technician_id: Key
    reasons: tuple[Token, ...]
    """``skills_missing``, ``unavailable``, ``load_full``, ``too_far``."""
    explanation: tuple[Text, ...]


class OptimizationOutput(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    tag_field="type",
    tag="dispatch.optimization_output.v1",
):
    """The ranking: best first, ties broken by distance, start, load, then technician id."""

    ticket_id: Key
    input_sha256: Sha256Hex
    """sha256 of the input's JSON encoding, to tie a snapshot to what produced it."""
    ranked: tuple[RankedCandidate, ...]
    excluded: tuple[ExcludedCandidate, ...]
    considered: int


class Recommendation(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The optimizer ranking a visit proposal followed, recorded with the proposal.

    ``input_sha256`` names the exact optimization input (the output carries the
    same hash), so the ranking can be recomputed and checked later.
    """

    input_sha256: Sha256Hex
    rank: PositiveInt
    score: Points


__all__ = [
    "ExcludedCandidate",
    "OptimizationInput",
    "OptimizationOutput",
    "Points",
    "RankedCandidate",
    "Recommendation",
    "ScoreComponents",
    "ScoringWeights",
    "TechnicianCandidate",
    "Weight",
]
