"""What every entrypoint needs and no service may know about: the platform a process runs (its database,
keys, connectors, face verifier, the context use cases take), SQLite group commit, idempotency of a
change under a caller's scope, and serving in worker processes."""
