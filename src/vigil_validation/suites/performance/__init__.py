"""The performance suite: an open-model load (fixed arrival rates, HDR histograms) against the target — mixed
workloads of many virtual users, the database under concurrent reads and writes, memory under sustained load,
latency and throughput across load steps, and a stress ramp to the knee — with the configured thresholds asserted
and every figure and series in the reports."""
