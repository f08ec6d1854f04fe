"""The Battleship wire contracts: tags, strictness and round trips."""

from __future__ import annotations

import msgspec
import pytest

from schemas import battleship as bs
from schemas.base import Command, Event, domain_of, name_of, tag_of, version_of
from schemas.subjects import command_subject_for, event_subject_for

MESSAGES = [
    *bs.LOBBY_COMMANDS,
    *bs.LOBBY_EVENTS,
    *bs.MATCH_COMMANDS,
    *bs.MATCH_EVENTS,
    *bs.RATINGS_COMMANDS,
    *bs.RATINGS_EVENTS,
]


@pytest.mark.parametrize("cls", MESSAGES, ids=lambda c: c.__name__)
def test_every_message_is_frozen_tagged_and_routable(cls: type[Command] | type[Event]) -> None:
    assert cls.__struct_config__.frozen
    assert domain_of(cls) in ("lobby", "match", "ratings")
    assert version_of(cls) == 1
    assert tag_of(cls) == f"{domain_of(cls)}.{name_of(cls)}.v1"
    if issubclass(cls, Command):
        assert command_subject_for(cls, "k1").startswith(f"cmd.{domain_of(cls)}.k1.")
    else:
        assert event_subject_for(cls, "k1").startswith(f"evt.{domain_of(cls)}.k1.")


def test_tags_are_unique() -> None:
    tags = [tag_of(c) for c in MESSAGES]
    assert len(tags) == len(set(tags))


def test_commands_refuse_unknown_fields_and_bad_values() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        msgspec.json.decode(
            b'{"type":"match.fire.v1","player":"a","row":1,"col":1,"x":1}', type=bs.Fire
        )
    with pytest.raises(msgspec.ValidationError, match=r"\$\.row"):
        msgspec.json.decode(b'{"type":"match.fire.v1","player":"a","row":26,"col":1}', type=bs.Fire)
    with pytest.raises(msgspec.ValidationError, match=r"\$\.capacity"):
        msgspec.json.decode(
            b'{"type":"lobby.create.v1","name":"r","host":"a","capacity":1}', type=bs.CreateRoom
        )
    with pytest.raises(msgspec.ValidationError, match=r"\$\.players\[1\]\.kind"):
        msgspec.json.decode(
            b'{"type":"match.create.v1","players":[{"kind":"user","id":"a"},'
            b'{"kind":"robot","id":"b"}]}',
            type=bs.CreateMatch,
        )


def test_round_trip_of_a_command_union() -> None:
    union = bs.CreateMatch | bs.PlaceFleet | bs.Fire | bs.Resign | bs.Chat
    placed = bs.PlaceFleet(
        player="alice",
        ships=(bs.ShipPlacement(ship="destroyer", row=1, col=2, orientation="vertical"),),
    )
    assert msgspec.json.decode(msgspec.json.encode(placed), type=union) == placed


def test_ladder_of() -> None:
    assert bs.ladder_of(bs.BoardSpec()) == "standard"
    small = bs.BoardSpec(
        height=6,
        width=6,
        fleet=(bs.ShipSpec(name="cruiser", length=3), bs.ShipSpec(name="destroyer", length=2)),
    )
    assert bs.ladder_of(small) == "6x6_3-2"
    assert bs.ladder_of(msgspec.structs.replace(small, no_touch=True)) == "6x6_3-2_nt"
