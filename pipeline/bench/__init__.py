"""`moodpipe bench` and `bench-model`: throughput, latency and cost, as ratios in one run."""
