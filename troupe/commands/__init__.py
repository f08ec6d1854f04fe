"""Subcommands contributed by domains: each module defines ``register(subparsers)``."""
