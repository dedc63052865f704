"""PostgreSQL LISTEN: a thread that turns notifications on a channel into a callback, so idle executors wake the
moment work is committed anywhere instead of polling. Reconnects after an outage; the caller's slow poll covers
whatever was missed meanwhile."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from sqlalchemy.engine import make_url

log = logging.getLogger("vigil.notify")
RECONNECT_S = 2.0


class Listener:
    def __init__(self, *, database_url: str, channel: str, on_notify: Callable[[], None]) -> None:
        self.conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
        self.channel = channel
        self.on_notify = on_notify
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._listen, name=f"vigil-listen-{self.channel}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'LISTEN "{self.channel}"')  # a fixed identifier of ours, never user input
                    self.on_notify()  # anything committed while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.on_notify()
            except psycopg.Error as exc:
                log.warning("LISTEN %s interrupted (%s); reconnecting", self.channel, type(exc).__name__)
                self._stop.wait(RECONNECT_S)
