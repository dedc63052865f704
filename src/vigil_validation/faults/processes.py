"""Process faults for processes the suite started itself (never anything else: it is given the Popen)."""

from __future__ import annotations

import signal
import subprocess


def kill(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL — no shutdown hook runs, no buffer is flushed: a crash — and wait until it is reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=timeout)


def pause(process: subprocess.Popen[bytes]) -> None:
    """SIGSTOP: the process holds its sockets and answers nothing (a hung process, a long GC pause)."""
    process.send_signal(signal.SIGSTOP)


def resume(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGCONT)
