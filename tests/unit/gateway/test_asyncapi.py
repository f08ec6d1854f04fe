"""The generated AsyncAPI 3.0 document, checked against the official schema and its own refs."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import AsyncConnection

from actors.kernel.actor import Actor, Change, StaleState, Versioned
from gateway.asyncapi import build_asyncapi
from schemas.base import Command, Context, Decision, Event, Key, NonNegativeInt, Rejection
from schemas.headers import Header
from tests.support import schemas as schema_support
from tests.support.schemas import SchemaUnavailable, asyncapi_schema, validator_for_bundle

# A small domain, defined here so the document is built from real Actor values.


class Encounter(msgspec.Struct, frozen=True, kw_only=True):
    """One encounter's turn state."""

    step: NonNegativeInt = 0
    active: bool = False


class Start(Command, frozen=True, tag="encounter.start.v1"):
    """Start the encounter with its first combatant."""

    first: Key


class NextTurn(Command, frozen=True, tag="encounter.next_turn.v1"):
    """End the current turn if the encounter is still at ``expected_step``."""

    expected_step: NonNegativeInt


class Started(Event, frozen=True, tag="encounter.started.v1"):
    """The encounter began."""

    first: str


class TurnEnding(Event, frozen=True, tag="encounter.turn_ending.v1"):
    step: int


class ExpirationsResolved(Event, frozen=True, tag="effects.expirations_resolved.v1"):
    """Every effect due at ``step`` has expired."""

    step: int
    expired: list[str] = []


class Effects(msgspec.Struct, frozen=True):
    active: list[str] = []


class MemoryStore:
    """Keeps states in a dict: enough for an Actor value, no database involved."""

    def __init__(self) -> None:
        self.rows: dict[str, Versioned[Any]] = {}

    async def load(
        self, conn: AsyncConnection, actor: str, keys: Sequence[str]
    ) -> Mapping[str, Versioned[Any]]:
        return {k: self.rows[k] for k in keys if k in self.rows}

    async def save(self, conn: AsyncConnection, actor: str, changes: Sequence[Change[Any]]) -> None:
        stale = [
            c.key for c in changes if self.rows.get(c.key, Versioned(None, 0)).version != c.previous
        ]
        if stale:
            raise StaleState(actor, stale)
        for change in changes:
            self.rows[change.key] = Versioned(change.state, change.version)


def decide_encounter(state: Encounter, message: Any, ctx: Context) -> Decision:
    match message:
        case Start(first=first):
            return [Started(first=first)]
        case NextTurn(expected_step=step) if step == state.step:
            return [TurnEnding(step=step)]
        case _:
            return Rejection(code="step_mismatch", reason="stale step", kind="conflict")


def evolve_encounter(state: Encounter, event: Event) -> Encounter:
    match event:
        case Started():
            return msgspec.structs.replace(state, active=True)
        case TurnEnding(step=step):
            return msgspec.structs.replace(state, step=step + 1)
        case _:
            return state


def decide_effects(state: Effects, message: Any, ctx: Context) -> Decision:
    return [ExpirationsResolved(step=0)]


def evolve_effects(state: Effects, event: Event) -> Effects:
    return state


ENCOUNTER: Actor[Encounter] = Actor(
    name="encounter",
    domain="encounter",
    state_type=Encounter,
    initial=lambda key: Encounter(),
    decide=decide_encounter,
    evolve=evolve_encounter,
    store=MemoryStore(),
    commands=(Start, NextTurn),
    reactions=(ExpirationsResolved,),
    emits=(Started, TurnEnding),
)
EFFECTS: Actor[Effects] = Actor(
    name="effects",
    domain="effects",
    state_type=Effects,
    initial=lambda key: Effects(),
    decide=decide_effects,
    evolve=evolve_effects,
    store=MemoryStore(),
    reactions=(TurnEnding,),
    emits=(ExpirationsResolved,),
)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    return validator_for_bundle(asyncapi_schema("3.0.0"))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build_asyncapi(
        [ENCOUNTER, EFFECTS],
        title="Troupe bus",
        version="0.1.0",
        server_url="nats://svc:s3cret@127.0.0.1:4222",
        description="Commands in, events out.",
    )


def errors_of(validator: jsonschema.protocols.Validator, doc: Any) -> list[str]:
    return [error.message for error in validator.iter_errors(doc)]


def walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for name, value in node.items():
            if name == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from walk_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_refs(item)


def resolve(doc: Mapping[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = doc
    for token in pointer[2:].split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def test_document_is_valid_asyncapi_3(
    validator: jsonschema.protocols.Validator, document: dict[str, Any]
) -> None:
    assert errors_of(validator, document) == []
    assert document["asyncapi"] == "3.0.0"
    # Plain JSON all the way down, so it can be served as is.
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["info"].pop("version"),
        lambda d: d.__setitem__("asyncapi", "2.6.0"),
        lambda d: d["operations"]["send.cmd.encounter.next_turn"].__setitem__("action", "publish"),
        lambda d: d["channels"]["cmd.encounter.next_turn"].__setitem__("address", 42),
        lambda d: d["components"]["messages"]["encounter.next_turn.v1"].__setitem__(
            "contentType", ["application/json"]
        ),
        lambda d: d["channels"]["cmd.encounter.next_turn"]["parameters"]["key"].__setitem__(
            "enum", "e1"
        ),
        lambda d: d.__setitem__("unknown", 1),
    ],
)
def test_broken_documents_fail_validation(
    validator: jsonschema.protocols.Validator, document: dict[str, Any], breakage: Any
) -> None:
    broken = copy.deepcopy(document)
    breakage(broken)
    assert errors_of(validator, broken)


def test_every_internal_ref_resolves(document: dict[str, Any]) -> None:
    refs = set(walk_refs(document))
    assert refs
    for ref in refs:
        assert resolve(document, ref) is not None, ref


def test_channels_follow_the_subject_layout(document: dict[str, Any]) -> None:
    addresses = {cid: ch["address"] for cid, ch in document["channels"].items()}
    assert addresses["cmd.encounter.next_turn"] == "cmd.encounter.{key}.next_turn"
    assert addresses["cmd.encounter.start"] == "cmd.encounter.{key}.start"
    assert addresses["evt.encounter.started"] == "evt.encounter.{key}.started"
    assert addresses["evt.effects.expirations_resolved"] == "evt.effects.{key}.expirations_resolved"
    assert addresses["out.encounter"] == "out.encounter.{digest}"
    assert addresses["dlq"] == "dlq.{consumer}"
    assert addresses["preview.encounter.next_turn"] == "preview.encounter.{key}.next_turn"
    assert addresses["query.encounter"] == "query.encounter.{key}"
    assert addresses["query.effects"] == "query.effects.{key}"
    # Reply inboxes are dynamic.
    assert addresses["preview.encounter.reply"] is None
    # No command channels for an actor without commands.
    assert not any(a and a.startswith(("cmd.effects", "out.effects")) for a in addresses.values())


def test_every_address_parameter_is_declared(document: dict[str, Any]) -> None:
    for channel in document["channels"].values():
        names = set(re.findall(r"\{(\w+)\}", channel["address"] or ""))
        assert names == set(channel.get("parameters", {})), channel["address"]


def test_dead_letter_consumers_are_the_actors(document: dict[str, Any]) -> None:
    consumer = document["channels"]["dlq"]["parameters"]["consumer"]
    assert consumer["enum"] == ["effects", "encounter"]


def test_operations_send_commands_and_receive_events(document: dict[str, Any]) -> None:
    operations = document["operations"]
    for operation_id, operation in operations.items():
        expected = "send" if operation_id.startswith("send.") else "receive"
        assert operation["action"] == expected
        assert operation["messages"]
    assert operations["send.cmd.encounter.next_turn"]["channel"] == {
        "$ref": "#/channels/cmd.encounter.next_turn"
    }
    assert "receive.evt.encounter.turn_ending" in operations
    assert "receive.evt.effects.expirations_resolved" in operations
    preview = operations["send.preview.encounter.next_turn"]
    assert preview["reply"]["channel"] == {"$ref": "#/channels/preview.encounter.reply"}
    query = operations["send.query.encounter"]
    assert query["reply"]["messages"] == [
        {"$ref": "#/channels/query.encounter.reply/messages/encounter.state"}
    ]


def test_messages_carry_payload_and_headers(document: dict[str, Any]) -> None:
    messages = document["components"]["messages"]
    next_turn = messages["encounter.next_turn.v1"]
    assert next_turn["name"] == "NextTurn"
    assert next_turn["contentType"] == "application/json"
    assert (
        next_turn["summary"]
        == "End the current turn if the encounter is still at ``expected_step``."
    )
    assert next_turn["headers"] == {"$ref": "#/components/schemas/CommandHeaders"}
    assert messages["encounter.started.v1"]["headers"] == {
        "$ref": "#/components/schemas/EventHeaders"
    }
    payload = resolve(document, next_turn["payload"]["$ref"])
    assert payload["properties"]["type"] == {"enum": ["encounter.next_turn.v1"]}
    assert payload["properties"]["expected_step"] == {"type": "integer", "minimum": 0}
    assert payload["required"] == ["type", "expected_step"]
    # Inherited base-class docs are not repeated as summaries.
    assert "summary" not in messages["encounter.turn_ending.v1"]


def test_header_schemas_cover_every_header(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    declared: set[str] = set()
    for name in ("CommandHeaders", "EventHeaders", "OutcomeHeaders", "DeadLetterHeaders"):
        declared |= set(schemas[name]["properties"])
    assert declared == {h.value for h in Header}
    assert schemas["CommandHeaders"]["required"] == ["Nats-Msg-Id"]


def test_state_and_outcome_payloads(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    state = resolve(
        document, document["components"]["messages"]["encounter.state"]["payload"]["$ref"]
    )
    assert set(state["properties"]) == {"state", "version"}
    outcome = document["components"]["messages"]["encounter.outcome"]["payload"]
    assert {"$ref": "#/components/schemas/Rejection"} in outcome["anyOf"]
    assert "Rejection" in schemas


def test_server_url_loses_its_credentials(document: dict[str, Any]) -> None:
    assert document["servers"]["nats"]["host"] == "127.0.0.1:4222"
    assert document["servers"]["nats"]["protocol"] == "nats"
    assert "s3cret" not in json.dumps(document)


def test_encoded_messages_match_their_schemas(document: dict[str, Any]) -> None:
    registry: Registry[Any] = Registry().with_resource(
        "urn:troupe:asyncapi", Resource.from_contents(document, default_specification=DRAFT202012)
    )

    def check(message_id: str, instance: Any) -> list[str]:
        ref = document["components"]["messages"][message_id]["payload"]["$ref"]
        validator = jsonschema.Draft202012Validator(
            {"$ref": "urn:troupe:asyncapi" + ref}, registry=registry
        )
        return [e.message for e in validator.iter_errors(instance)]

    good = msgspec.json.decode(msgspec.json.encode(NextTurn(expected_step=3)))
    assert check("encounter.next_turn.v1", good) == []
    assert check("encounter.next_turn.v1", {**good, "expected_step": -1})
    assert check("encounter.next_turn.v1", {**good, "type": "encounter.start.v1"})
    event = msgspec.json.decode(msgspec.json.encode(ExpirationsResolved(step=2, expired=["x"])))
    assert check("effects.expirations_resolved.v1", event) == []
    state = msgspec.json.decode(msgspec.json.encode(Versioned(Encounter(step=2), 5)))
    assert check("encounter.state", state) == []


def test_build_is_deterministic(document: dict[str, Any]) -> None:
    again = build_asyncapi(
        [EFFECTS, ENCOUNTER],
        title="Troupe bus",
        version="0.1.0",
        server_url="nats://svc:s3cret@127.0.0.1:4222",
        description="Commands in, events out.",
    )
    assert json.dumps(again, sort_keys=True) == json.dumps(document, sort_keys=True)


def test_duplicate_actor_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        build_asyncapi([ENCOUNTER, ENCOUNTER], title="t", version="1", server_url="nats://h:4222")


def test_tls_and_ipv6_servers(validator: jsonschema.protocols.Validator) -> None:
    doc = build_asyncapi([EFFECTS], title="t", version="1", server_url="tls://[::1]:4222")
    assert doc["servers"]["nats"]["host"] == "[::1]:4222"
    assert errors_of(validator, doc) == []


def test_schema_helper_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SchemaUnavailable, match="npm is not installed"):
        asyncapi_schema("3.0.0", cache=tmp_path / "empty")


def test_schema_helper_reads_the_cache_without_npm(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cached = tmp_path / f"asyncapi-3.0.0-specs-{schema_support.ASYNCAPI_SPECS_VERSION}.json"
    cached.write_text(json.dumps(asyncapi_schema("3.0.0")))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert asyncapi_schema("3.0.0", cache=tmp_path)["title"] == "AsyncAPI 3.0.0 schema."


class Punch(msgspec.Struct, frozen=True, tag="punch"):
    power: int


class Kick(msgspec.Struct, frozen=True, tag="kick"):
    height: int


class Attack(Command, frozen=True, tag="encounter.attack.v1"):
    """A command whose field is a tagged union, and one field called discriminator."""

    move: Punch | Kick
    discriminator: str = ""


def test_tagged_unions_stay_valid_asyncapi(validator: jsonschema.protocols.Validator) -> None:
    fighter = Actor(
        name="fighter",
        domain="encounter",
        state_type=Encounter,
        initial=lambda key: Encounter(),
        decide=decide_encounter,
        evolve=evolve_encounter,
        store=MemoryStore(),
        commands=(Attack,),
    )
    doc = build_asyncapi([fighter], title="t", version="1", server_url="nats://h:4222")
    assert errors_of(validator, doc) == []
    attack = doc["components"]["schemas"]["Attack"]
    # OpenAPI's discriminator object is not AsyncAPI's; each variant still pins its tag.
    assert "discriminator" not in attack["properties"]["move"]
    assert attack["properties"]["discriminator"] == {"type": "string", "default": ""}
    assert doc["components"]["schemas"]["Kick"]["properties"]["type"] == {"enum": ["kick"]}
