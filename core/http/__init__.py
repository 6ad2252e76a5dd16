"""HTTP to the outside systems: the transport, reading answers, shared access tokens."""
