"""Side-by-side benchmarks of the Store facade, raw psycopg and SQLAlchemy Core.

Run ``make bench`` (or ``make bench-quick``); docs/benchmarks.md describes the
method and records a full run.
"""
