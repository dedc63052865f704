"""Vigil: a multi-tenant anomaly-detection platform."""

__version__ = "0.1.0"
