"""The mastery actor: expiration-triggered procs, validated against the step's real expirations."""
