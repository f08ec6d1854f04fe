"""The tickets actor: one entity per ticket; every command normalized, decided and recorded."""
