"""The lobby actor: rooms players gather in before a Battleship match."""
