"""Faults the disaster-recovery suite injects: a TCP fault proxy with toxics between Vigil and its dependencies,
and process faults (SIGKILL, SIGSTOP/SIGCONT) for the processes a managed or cluster target started."""

from vigil_validation.faults.processes import kill, pause, resume
from vigil_validation.faults.proxy import FaultProxy, Link, through_link, upstream_of
from vigil_validation.faults.toxics import Bandwidth, Blackhole, Down, Latency, ResetPeer, SlowClose, Toxic

__all__ = [
    "Bandwidth",
    "Blackhole",
    "Down",
    "FaultProxy",
    "Latency",
    "Link",
    "ResetPeer",
    "SlowClose",
    "Toxic",
    "kill",
    "pause",
    "resume",
    "through_link",
    "upstream_of",
]
