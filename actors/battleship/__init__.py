"""Battleship: a pure engine, a Gymnasium environment, a batched numpy environment and players."""

from __future__ import annotations

ENV_ID = "troupe/Battleship-v0"
ENTRY_POINT = "actors.battleship.env:BattleshipEnv"


def register() -> str:
    """Register ``troupe/Battleship-v0`` with Gymnasium (idempotent); return the id.

    Importing ``actors.battleship.env`` calls this too. Importing this package alone does
    not, so pure actor rules that use the engine never load gymnasium.
    """
    import gymnasium

    if ENV_ID not in gymnasium.registry:
        gymnasium.register(id=ENV_ID, entry_point=ENTRY_POINT, disable_env_checker=False)
    return ENV_ID


__all__ = ["ENTRY_POINT", "ENV_ID", "register"]
