"""Integration tests of the benchmark peers."""
