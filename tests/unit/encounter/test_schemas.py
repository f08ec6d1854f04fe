"""The wire contracts: tags, subjects keyed by encounter id, strict commands, JSON round trips."""

from __future__ import annotations

import msgspec
import pytest

from actors.effects import rules as effects
from actors.encounter import rules as encounter
from actors.mastery import rules as mastery
from schemas.base import Command, Event, Message, domain_of, name_of, tag_of
from schemas.effects import EFFECTS_COMMANDS, EFFECTS_EVENTS, ApplyEffect
from schemas.encounter import ENCOUNTER_COMMANDS, ENCOUNTER_EVENTS, NextTurn
from schemas.mastery import MASTERY_COMMANDS, MASTERY_EVENTS, RequestProc
from schemas.subjects import command_subject_for, event_subject_for
from tests.unit.encounter.harness import KEY, Bus, begin, effect

ALL: list[type[Message]] = [
    *ENCOUNTER_COMMANDS,
    *ENCOUNTER_EVENTS,
    *EFFECTS_COMMANDS,
    *EFFECTS_EVENTS,
    *MASTERY_COMMANDS,
    *MASTERY_EVENTS,
]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_message_has_a_versioned_tag_in_its_domain(cls: type[Message]) -> None:
    domain, name, version = tag_of(cls).split(".")
    assert domain in {"encounter", "effects", "mastery"}
    assert name == name.lower()
    assert version == "v1"
    assert cls.__struct_config__.frozen
    assert issubclass(
        cls,
        Command if cls in (*ENCOUNTER_COMMANDS, *EFFECTS_COMMANDS, *MASTERY_COMMANDS) else Event,
    )


def test_subjects_are_keyed_by_the_encounter_id() -> None:
    assert command_subject_for(NextTurn, "enc-1") == "cmd.encounter.enc-1.next_turn"
    assert command_subject_for(ApplyEffect, "enc-1") == "cmd.effects.enc-1.apply_effect"
    assert command_subject_for(RequestProc, "enc-1") == "cmd.mastery.enc-1.request_proc"
    names = {
        tag_of(c)
        for c in ALL
        if c.__name__ in {"EffectExpired", "MasteryProc", "TurnEnded", "TurnEnding"}
    }
    assert names == {
        "effects.effect_expired.v1",
        "mastery.mastery_proc.v1",
        "encounter.turn_ended.v1",
        "encounter.turn_ending.v1",
    }
    for cls in (*ENCOUNTER_EVENTS, *EFFECTS_EVENTS, *MASTERY_EVENTS):
        assert event_subject_for(cls, "enc-1") == f"evt.{domain_of(cls)}.enc-1.{name_of(cls)}"


def test_commands_refuse_unknown_fields_and_name_the_path() -> None:
    decoder = msgspec.json.Decoder(NextTurn)
    assert decoder.decode(b'{"type":"encounter.next_turn.v1","expected_step":3}') == NextTurn(
        expected_step=3
    )
    with pytest.raises(msgspec.ValidationError, match="stepp"):
        decoder.decode(b'{"expected_step":3,"stepp":1}')
    with pytest.raises(msgspec.ValidationError, match=r"\$.expected_step"):
        decoder.decode(b'{"expected_step":"7"}')
    with pytest.raises(msgspec.ValidationError, match=r"\$.duration"):
        msgspec.json.decode(
            b'{"instance_id":"e","owner":"a","placed_by":"a","kind":"BUFF","name":"x",'
            b'"duration":0}',
            type=ApplyEffect,
        )
    with pytest.raises(msgspec.ValidationError, match=r"\$.kind"):
        msgspec.json.decode(
            b'{"instance_id":"e","owner":"a","placed_by":"a","kind":"CURSE","name":"x",'
            b'"duration":1}',
            type=ApplyEffect,
        )
    with pytest.raises(msgspec.ValidationError, match=r"\$.mastery"):
        msgspec.json.decode(
            b'{"holder":"a","mastery":"Rapid Response","count":1,"step":1}', type=RequestProc
        )


def test_events_and_states_round_trip_through_json() -> None:
    bus = Bus()
    begin(bus)
    bus.send(KEY, effect("bless", "a"))
    bus.send(KEY, RequestProc(holder="a", mastery="rapid_response", count=1, step=1))
    bus.send(KEY, NextTurn(expected_step=1))
    union = msgspec.json.Decoder(list[msgspec.Raw])
    events = bus.events(KEY)
    raw = union.decode(msgspec.json.encode(events))
    for event, data in zip(events, raw, strict=True):
        assert msgspec.json.decode(data, type=type(event)) == event
    # Events tolerate fields they do not know, so newer writers don't break older readers.
    newer = msgspec.json.encode(events[-1])[:-1] + b',"added_later":1}'
    assert msgspec.json.decode(newer, type=type(events[-1])) == events[-1]
    for node, state_type in (
        ("encounter", encounter.EncounterState),
        ("effects", effects.EffectsState),
        ("mastery", mastery.MasteryState),
    ):
        state = bus.nodes[node].state(KEY)
        assert msgspec.json.decode(msgspec.json.encode(state), type=state_type) == state
