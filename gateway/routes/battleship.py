"""Battleship over HTTP: rooms, matches, agents and ladders, and the lobby and match sockets.

The handlers live in ``gateway.battleship`` (REST in ``rest``, sockets in ``sockets``);
docs/battleship.md ("HTTP and WebSockets") describes routes, auth rules and frames.
"""

from __future__ import annotations

from gateway.battleship.routes import routes

__all__ = ["routes"]
