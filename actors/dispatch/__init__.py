"""The pure dispatch library: normalization, policy bundles, decisions, optimizer, shadow replay."""
