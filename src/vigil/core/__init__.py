"""Plumbing every domain uses: database, tenant context, blobs, errors, pagination, idempotency, logs, metrics."""
