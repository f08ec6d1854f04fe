"""The recommend-only optimizer: filters, scores, explanations and deterministic tie-breaks."""

from __future__ import annotations

import math
from datetime import timedelta

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.dispatch.optimizer import EARTH_RADIUS_KM, haversine_km, rank, recommendation
from schemas.base import Rejection
from schemas.dispatch import (
    DecisionRecorded,
    GeoPoint,
    OptimizationInput,
    ProposeVisit,
    Recommendation,
    TechnicianCandidate,
    TimeWindow,
    VisitProposed,
)
from schemas.dispatch.optimizer import ScoringWeights
from tests.unit.dispatch.builders import (
    MONDAY_10_CDT,
    Driver,
    create_ticket,
    env_for,
    make_bundle,
    utc,
    window,
)

SITE = GeoPoint(lat=41.8781, lon=-87.6298)  # Chicago Loop
START = utc(2025, 6, 3, 14, 0)
WINDOW = TimeWindow(start=START, end=START + timedelta(hours=8))


def near(km_north: float) -> GeoPoint:
    return GeoPoint(lat=SITE.lat + km_north / 111.2, lon=SITE.lon)


def tech(
    ident: str,
    *,
    km: float = 10,
    skills: tuple[str, ...] = ("plumbing",),
    free_from: int = 0,
    free_hours: int = 8,
    load: int = 2,
    max_load: int = 8,
) -> TechnicianCandidate:
    free = TimeWindow(
        start=START + timedelta(hours=free_from),
        end=START + timedelta(hours=free_from + free_hours),
    )
    return TechnicianCandidate(
        technician_id=ident,
        skills=skills,
        location=near(km),
        availability=(free,),
        current_load=load,
        max_load=max_load,
    )


def request(*candidates: TechnicianCandidate, **fields: object) -> OptimizationInput:
    base: dict[str, object] = {
        "ticket_id": "t-100",
        "site": SITE,
        "window": WINDOW,
        "candidates": candidates,
        "required_skills": ("plumbing",),
    }
    base.update(fields)
    return OptimizationInput(**base)  # type: ignore[arg-type]


def test_haversine_distances() -> None:
    new_york = GeoPoint(lat=40.7128, lon=-74.0060)
    assert haversine_km(SITE, new_york) == pytest.approx(1144, rel=0.005)
    assert haversine_km(SITE, SITE) == 0
    antipode = GeoPoint(lat=-SITE.lat, lon=SITE.lon + 180)
    assert haversine_km(SITE, antipode) == pytest.approx(math.pi * EARTH_RADIUS_KM)


def test_closer_freer_and_earlier_candidates_rank_higher() -> None:
    out = rank(
        request(
            tech("far", km=120),
            tech("near", km=5),
            tech("busy", km=5, load=7),
            tech("late", km=5, free_from=6, free_hours=2),
        )
    )
    assert [r.technician_id for r in out.ranked] == ["near", "busy", "late", "far"]
    best = out.ranked[0]
    assert best.rank == 1
    assert best.distance_m == pytest.approx(5000, abs=5)
    assert best.earliest_start == START
    assert best.overlap_minutes == 480
    assert best.explanation[0].startswith("skills: has every required skill")
    assert "5.0 km of 150 km max" in best.explanation[1]
    assert best.explanation[-1].startswith(f"score {best.score} = weighted mean")


def test_hard_filters_exclude_with_reasons() -> None:
    out = rank(
        request(
            tech("ok"),
            tech("sparky", skills=("electrical",)),
            tech("off", free_from=8, free_hours=4),
            tech("full", load=8),
            tech("remote", km=400),
            tech("everything", skills=(), free_from=9, load=9, max_load=9, km=500),
        )
    )
    assert [r.technician_id for r in out.ranked] == ["ok"]
    reasons = {e.technician_id: e.reasons for e in out.excluded}
    assert reasons == {
        "sparky": ("skills_missing",),
        "off": ("unavailable",),
        "full": ("load_full",),
        "remote": ("too_far",),
        "everything": ("skills_missing", "unavailable", "load_full", "too_far"),
    }
    assert out.considered == 6
    assert [e.technician_id for e in out.excluded] == sorted(reasons)


def test_preferred_skills_raise_the_score() -> None:
    out = rank(
        request(
            tech("plain"),
            tech("gas", skills=("plumbing", "gas_fitting")),
            preferred_skills=("gas_fitting",),
        )
    )
    assert [r.technician_id for r in out.ranked] == ["gas", "plain"]
    assert out.ranked[0].components.skills == 10_000
    assert out.ranked[1].components.skills == 0


def test_a_short_window_needs_only_its_own_length() -> None:
    short = TimeWindow(start=START, end=START + timedelta(minutes=30))
    out = rank(request(tech("a", free_hours=1), window=short, min_overlap_minutes=60))
    assert [r.technician_id for r in out.ranked] == ["a"]


def test_ties_break_by_distance_then_start_then_load_then_id() -> None:
    only_load = ScoringWeights(skills=0, distance=0, availability=0, load=1)
    out = rank(
        request(
            tech("d", km=20),
            tech("c", km=10, free_from=1, free_hours=7),
            tech("b", km=10),
            tech("a", km=10),
            weights=only_load,
        )
    )
    assert len({r.score for r in out.ranked}) == 1
    assert [r.technician_id for r in out.ranked] == ["a", "b", "c", "d"]


def test_limit_keeps_the_best() -> None:
    out = rank(request(*(tech(f"t{i}", km=i + 1) for i in range(8)), limit=3))
    assert [r.technician_id for r in out.ranked] == ["t0", "t1", "t2"]


def test_inputs_are_validated() -> None:
    with pytest.raises(msgspec.ValidationError, match="technician ids repeat"):
        msgspec.convert(
            msgspec.to_builtins(request(tech("a"), tech("b")))
            | {"candidates": [msgspec.to_builtins(tech("a"))] * 2},
            OptimizationInput,
        )
    with pytest.raises(msgspec.ValidationError, match="weight must be positive"):
        msgspec.convert({"skills": 0, "distance": 0, "availability": 0, "load": 0}, ScoringWeights)


@settings(max_examples=30, deadline=None)
@given(
    specs=st.lists(
        st.tuples(st.integers(0, 200), st.integers(0, 7), st.integers(1, 8), st.integers(0, 9)),
        min_size=1,
        max_size=8,
    ),
    data=st.data(),
)
def test_ranking_is_independent_of_candidate_order(
    specs: list[tuple[int, int, int, int]], data: st.DataObject
) -> None:
    candidates = [
        tech(f"t{i}", km=km, free_from=start, free_hours=hours, load=load)
        for i, (km, start, hours, load) in enumerate(specs)
    ]
    shuffled = data.draw(st.permutations(candidates))
    first, second = rank(request(*candidates)), rank(request(*shuffled))
    assert first.ranked == second.ranked
    assert first.excluded == second.excluded
    scores = [r.score for r in first.ranked]
    assert scores == sorted(scores, reverse=True)


def test_a_proposal_records_the_ranking_it_follows() -> None:
    output = rank(request(tech("near", km=2), tech("far", km=40), tech("sparky", skills=())))
    first = recommendation(output, "near")
    assert first == Recommendation(
        input_sha256=output.input_sha256, rank=1, score=output.ranked[0].score
    )
    assert recommendation(output, "far") is not None
    assert recommendation(output, "sparky") is None  # excluded, so never recommended
    assert recommendation(output, "nobody") is None

    driver = Driver(env_for(make_bundle()))
    driver.send(create_ticket())
    proposal = ProposeVisit(
        visit_id="v1",
        technician_id="near",
        window=window(MONDAY_10_CDT),
        recommendation=first,
    )
    decision = driver.send(proposal)
    assert not isinstance(decision, Rejection)
    proposed = [e for e in driver.events if isinstance(e, VisitProposed)]
    assert [e.recommendation for e in proposed] == [first]
    # The decision record's normalized command keeps it too, so the ranking is auditable.
    recorded = [e for e in driver.events if isinstance(e, DecisionRecorded)][-1]
    assert recorded.command.parameters["recommendation"] == msgspec.to_builtins(first)
    # A recommendation that names no input is refused at the boundary.
    with pytest.raises(msgspec.ValidationError, match="input_sha256"):
        msgspec.convert(
            {**msgspec.to_builtins(proposal), "recommendation": {"rank": 1, "score": 5}},
            ProposeVisit,
        )
