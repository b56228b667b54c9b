"""Benchmarks: scripts that measure and print (not tests). See docs/benchmarks.md."""
