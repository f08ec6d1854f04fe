"""Helpers of the Battleship HTTP and WebSocket tests (end-to-end and integration)."""
