"""Domain REST modules: each ``<name>.py`` here defining ``routes(services)`` is mounted at /v1.

The contract (docs/gateway.md has the full text and an example)::

    def routes(services: gateway.app.Services) -> Sequence[litestar route handler or Router]

Handlers send commands with ``services.respond(request, command, key)``, which
does the Idempotency-Key handling, the scope check, the outcome wait and the
HTTP mapping exactly as ``POST /v1/cmd/...`` does.
"""
