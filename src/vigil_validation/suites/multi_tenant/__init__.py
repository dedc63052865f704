"""The multi-tenant suite: isolation of data, configuration and performance between tenants."""
