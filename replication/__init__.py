"""Primary and replica sides of Redis replication."""
