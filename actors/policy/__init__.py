"""The policy actor: one entity per tenant holding its active bundle and its paused scopes."""
