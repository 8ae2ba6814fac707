"""The running server: event loop, protocol, command table, keyspace and the effect path."""
