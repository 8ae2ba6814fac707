"""Offline command-line tools over RDB and AOF files."""
