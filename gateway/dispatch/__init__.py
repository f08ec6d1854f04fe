"""Field-service dispatch over HTTP: ticket and policy commands, reads, and the optimizer."""
