"""Battleship's HTTP routes and WebSockets, mounted by ``gateway/routes/battleship.py``."""
