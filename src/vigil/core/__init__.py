"""Plumbing every domain uses, free of any web framework: database and tenant context, blobs, errors, pagination,
idempotency records, logs, metrics (the HTTP edge is `vigil.web`)."""
