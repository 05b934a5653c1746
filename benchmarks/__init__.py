"""Scripts that measure and print figures (`python -m benchmarks.NAME`); never asserted in tests."""
