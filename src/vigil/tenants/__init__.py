"""Tenants across domains: what a tenant uses of its quotas (it counts in every domain, so it sits above them)."""
