"""The ratings actor: Elo ladders of users and agents fed by finished rated matches."""
