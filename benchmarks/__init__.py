"""Benchmark harness of sb3-sparse: training matrices (``benchmarks.run``), summaries and throughput."""
