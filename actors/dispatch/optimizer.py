"""The recommend-only optimizer: rank technicians for a ticket and explain each place; no writes."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from schemas.dispatch.common import GeoPoint, TimeWindow
from schemas.dispatch.optimizer import (
    ExcludedCandidate,
    OptimizationInput,
    OptimizationOutput,
    RankedCandidate,
    Recommendation,
    ScoreComponents,
    TechnicianCandidate,
)

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG R1, from the GRS 80 ellipsoid, Moritz 1980)."""
FULL = 10_000


def haversine_km(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle distance in km on a sphere of the mean Earth radius."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat, dlon = lat2 - lat1, math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def earliest_slot(
    availability: tuple[TimeWindow, ...], window: TimeWindow, need: timedelta
) -> tuple[datetime, int] | None:
    """The earliest start inside ``window`` with ``need`` free time after it, and the free
    minutes from there within the window; None when no slot is long enough."""
    best: tuple[datetime, int] | None = None
    for free in sorted(availability, key=lambda w: (w.start, w.end)):
        start, end = max(free.start, window.start), min(free.end, window.end)
        if end - start >= need and (best is None or start < best[0]):
            best = (start, int((end - start).total_seconds() // 60))
    return best


@dataclass(frozen=True)
class _Scored:
    candidate: TechnicianCandidate
    score: int
    components: ScoreComponents
    distance_m: int
    start: datetime
    overlap: int
    explanation: tuple[str, ...]


def rank(request: OptimizationInput) -> OptimizationOutput:
    """Rank the candidates: hard filters first, then a weighted score in basis points.

    Components (each 0-10 000): skills = share of preferred skills held
    (required skills are a filter); distance = 1 - km / max km; availability =
    1 - (earliest start - window start) / window length; load = 1 - load / max
    load. The score is the weighted mean, rounded down. Ties: shorter distance,
    earlier start, lower load, then technician id.
    """
    window_span = request.window.end - request.window.start
    need = min(timedelta(minutes=request.min_overlap_minutes), window_span)
    weights = request.weights
    total_weight = weights.skills + weights.distance + weights.availability + weights.load
    required = set(request.required_skills)
    preferred = sorted(set(request.preferred_skills) - required)
    scored: list[_Scored] = []
    excluded: list[ExcludedCandidate] = []
    for candidate in request.candidates:
        km = haversine_km(request.site, candidate.location)
        skills = set(candidate.skills)
        missing = sorted(required - skills)
        slot = earliest_slot(candidate.availability, request.window, need)
        reasons: list[str] = []
        why: list[str] = []
        if missing:
            reasons.append("skills_missing")
            why.append(f"lacks required skills: {', '.join(missing)}")
        if slot is None:
            reasons.append("unavailable")
            why.append(f"no {int(need.total_seconds() // 60)} free minutes inside the window")
        if candidate.current_load >= candidate.max_load:
            reasons.append("load_full")
            why.append(f"at capacity: {candidate.current_load} of {candidate.max_load} jobs")
        if km > request.max_distance_km:
            reasons.append("too_far")
            why.append(f"{km:.1f} km away, more than {request.max_distance_km:g} km")
        if reasons or slot is None:
            excluded.append(
                ExcludedCandidate(
                    technician_id=candidate.technician_id,
                    reasons=tuple(reasons),
                    explanation=tuple(why),
                )
            )
            continue
        start, overlap = slot
        held = [s for s in preferred if s in skills]
        components = ScoreComponents(
            skills=FULL if not preferred else FULL * len(held) // len(preferred),
            distance=_clamp(round(FULL * (1 - km / request.max_distance_km))),
            availability=_clamp(round(FULL * (1 - (start - request.window.start) / window_span))),
            load=_clamp(round(FULL * (1 - candidate.current_load / candidate.max_load))),
        )
        score = (
            weights.skills * components.skills
            + weights.distance * components.distance
            + weights.availability * components.availability
            + weights.load * components.load
        ) // total_weight
        explanation = (
            "skills: has every required skill"
            + (f" ({', '.join(sorted(required))})" if required else "")
            + (f"; preferred {len(held)}/{len(preferred)}" if preferred else ""),
            f"distance: {km:.1f} km of {request.max_distance_km:g} km max",
            f"available from {start.isoformat()} ({overlap} min free in the window)",
            f"load: {candidate.current_load} of {candidate.max_load} jobs",
            f"score {score} = weighted mean of skills {components.skills}, distance "
            f"{components.distance}, availability {components.availability}, load "
            f"{components.load} (weights {weights.skills}/{weights.distance}/"
            f"{weights.availability}/{weights.load})",
        )
        scored.append(
            _Scored(
                candidate=candidate,
                score=score,
                components=components,
                distance_m=round(km * 1000),
                start=start,
                overlap=overlap,
                explanation=explanation,
            )
        )
    scored.sort(
        key=lambda s: (
            -s.score,
            s.distance_m,
            s.start,
            s.candidate.current_load,
            s.candidate.technician_id,
        )
    )
    ranked = tuple(
        RankedCandidate(
            rank=i,
            technician_id=s.candidate.technician_id,
            score=s.score,
            components=s.components,
            distance_m=s.distance_m,
            earliest_start=s.start,
            overlap_minutes=s.overlap,
            current_load=s.candidate.current_load,
            explanation=s.explanation,
        )
        for i, s in enumerate(scored[: request.limit], start=1)
    )
    return OptimizationOutput(
        ticket_id=request.ticket_id,
        input_sha256=hashlib.sha256(msgspec.json.encode(request)).hexdigest(),
        ranked=ranked,
        excluded=tuple(sorted(excluded, key=lambda e: e.technician_id)),
        considered=len(request.candidates),
    )


def recommendation(output: OptimizationOutput, technician_id: str) -> Recommendation | None:
    """What a visit proposal for ``technician_id`` records of this ranking (None if unranked)."""
    for candidate in output.ranked:
        if candidate.technician_id == technician_id:
            return Recommendation(
                input_sha256=output.input_sha256, rank=candidate.rank, score=candidate.score
            )
    return None


def _clamp(points: int) -> int:
    return max(0, min(FULL, points))
