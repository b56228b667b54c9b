"""Security checks of what the platform runs (CIS Docker Benchmark section 5)."""
