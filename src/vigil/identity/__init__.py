"""Identity: tenants, users, roles and permissions, passwords, tokens."""
