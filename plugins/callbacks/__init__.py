"""Calls back (issue 10, part 3): offered to callers who wait long, kept in their
place in time, tried within a calling window, with retries (docs/plugins.md)."""
