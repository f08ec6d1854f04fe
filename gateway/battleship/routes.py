"""The Battleship routes as one ``routes(services)``: what ``gateway/routes/battleship.py`` mounts.

Kept in this package so an app can mount exactly these routes
(``create_app(services, route_package="gateway.battleship")``), as the tests do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from litestar.types import ControllerRouterHandler

from gateway.battleship.rest import rest_routes
from gateway.battleship.sockets import socket_routes

if TYPE_CHECKING:
    from gateway.app import Services

__all__ = ["routes"]


def routes(services: Services) -> Sequence[ControllerRouterHandler]:
    """Every Battleship REST route and both sockets (mounted under /v1)."""
    return [*rest_routes(services), *socket_routes(services)]
