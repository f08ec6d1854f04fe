"""Field-service dispatch routes under /v1/dispatch (the handlers live in gateway.dispatch)."""

from __future__ import annotations

from gateway.dispatch.routes import routes

__all__ = ["routes"]
