"""Streaming detection (sessions, online detectors, the WebSocket): not built yet."""
