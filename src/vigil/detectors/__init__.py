"""Detectors: configuration, model versions, training and detection use cases."""
