"""Bytes on disk: RDB and AOF readers and writers (sans-IO)."""
