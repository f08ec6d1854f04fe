"""The match actor: one Battleship game between two users or agents, move by move."""
