"""The disaster-recovery suite: real faults (a fault proxy on every dependency link, SIGKILLed processes, a crashed
database) against a deployment of its own, with assertions during and after each fault."""
