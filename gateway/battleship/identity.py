"""Who acts in a Battleship request, and the ids the gateway derives for new rooms and matches.

With a token the acting player is the token's subject: the gateway sends it as the
command's principal and the actors refuse any move made in another player's name. With
authentication off (loopback only) every request is the anonymous local principal, so a
body ``player`` (or the sockets' ``?player=``) says who acts; such commands travel without
a principal, vouched for by the gateway, because the local operator plays every seat.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import msgspec

from gateway import idempotency
from gateway.problems import ProblemError, forbidden
from schemas.subjects import InvalidSubject, check_key

if TYPE_CHECKING:
    from gateway.app import Caller

__all__ = ["ID_NAMESPACE", "Acting", "acting", "derived_key", "socket_command_id"]

ID_NAMESPACE: Final = uuid.UUID("0b1f6c0e-3f8e-5a47-b3c2-6a0d9e41c7b5")
"""uuid5 namespace of room and match ids derived from idempotency keys; never change it."""


@dataclass(frozen=True)
class Acting:
    """The player a request acts as, and the caller to send its commands as."""

    player: str
    caller: Caller
    local: bool
    """True when authentication is off and the gateway vouches for the player."""


def acting(caller: Caller, requested: str | None) -> Acting:
    """The acting player of a request whose body (or query) names ``requested`` (or nobody).

    Raises a 403 problem when a signed-in caller names someone else, or when the token's
    subject cannot be a player id (ids are subject tokens: letters, digits, ``_``, ``-``).
    """
    principal = caller.principal
    if principal.anonymous:
        player = requested or principal.subject
        if player == principal.subject:
            return Acting(player=player, caller=caller, local=True)
        # No principal header: the actors accept the named player from a trusted sender.
        nobody = msgspec.structs.replace(principal, subject="")
        vouched = dataclasses.replace(caller, principal=nobody)
        return Acting(player=player, caller=vouched, local=True)
    subject = principal.subject
    if requested is not None and requested != subject:
        raise ProblemError(
            forbidden(
                f"signed in as {subject}, cannot act for {requested}: `player` may only name "
                "yourself (it chooses a player only when authentication is off)",
                code="wrong_principal",
            )
        )
    try:
        check_key(subject)
    except InvalidSubject:
        raise ProblemError(
            forbidden(
                f"the token's subject {subject!r} cannot be a player id (1-128 letters, digits, "
                "'_' or '-'); ask the issuer for a subject of that form",
                code="subject_not_a_player_id",
            )
        ) from None
    return Acting(player=subject, caller=caller, local=False)


def derived_key(prefix: str, caller: Caller, values: Sequence[str]) -> str:
    """A new entity's key from the request's Idempotency-Key: every retry names the same entity.

    ``values`` are the request's Idempotency-Key header values (a missing or malformed key
    raises the same 400 problem the command would).
    """
    key = idempotency.parse_key(values, method="POST")
    assert key is not None  # POST always needs one
    scope = "\n".join((caller.tenant, caller.user.id, prefix, key))
    return f"{prefix}-{uuid.uuid5(ID_NAMESPACE, scope).hex}"


def socket_command_id(caller: Caller, player: str, match_id: str, ref: str | None) -> str:
    """The command id of a socket frame: derived from its ``ref`` (so a resend is the same
    command), random without one. ``player`` keeps local players (one caller) apart."""
    if ref is None:
        return str(uuid.uuid4())
    scope = "\n".join((caller.tenant, caller.user.id, player, "ws", match_id, ref))
    return str(uuid.uuid5(ID_NAMESPACE, scope))
