"""`make bench`: throughput and latency, always as ratios to a baseline measured in the same run."""
