"""Streaming throughput through the API vs. River's own loop over the same events, model and seed, in the same run.

Starts a real `vigil serve` (SQLite, fresh data directory), creates a half-space-trees stream, and sends 100,000
events of 8 features: through HTTP batches of 100 (one request after the other, as a simple client does), then
through one WebSocket (the SDK's connection, batches of 100 pipelined up to the server's in-flight bound). The
baseline is River's `score_one`/`learn_one` loop with the same pipeline (min-max scaling | HalfSpaceTrees, same
seed); the scores must be equal, so both did the same work. Every acknowledged batch is durable (write-ahead log
committed before the answer).

    python benchmarks/bench_stream.py [--events 100000] [--batch 100] [--plot stream_latency.png]

Prints events/s of each path, the ratio to River's loop (target for HTTP batches: >= 0.5), the per-batch latency
p50/p99 (HDR histogram), and what making a record durable costs on this disk (fsync, fdatasync, a preallocated file),
measured in the same run: an acknowledged batch waits for one (its commit), which bounds the ratio of sequential
batches on a slow disk.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from hdrh.histogram import HdrHistogram
from river import anomaly, preprocessing

from harness import wait_warm
from vigil.client import VigilClient

EMAIL, PASSWORD = "bench@vigil.local", "benchmark passphrase that is long"
SECRET = "benchmark-secret-key-0123456789abcdefghijklmnop"
FEATURES = [f"f{i}" for i in range(8)]
SEED = 42
SNAPSHOT_EVERY = 10_000  # events (the server's default, set explicitly): the batches that take one are known


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")},
        "VIGIL_DATA_DIR": str(data_dir),
        "VIGIL_SECRET_KEY": SECRET,
        "VIGIL_BOOTSTRAP_ADMIN_EMAIL": EMAIL,
        "VIGIL_BOOTSTRAP_ADMIN_PASSWORD": PASSWORD,
        "VIGIL_LOG_LEVEL": "WARNING",
        # The benchmark is one client sending as fast as it can: limits sized for it, still counted.
        "VIGIL_RATE_LIMIT_PER_USER": "1000000/minute",
        "VIGIL_RATE_LIMIT_PER_IP": "1000000/minute",
        "VIGIL_QUOTA_STREAM_EVENTS_PER_SECOND": "10000000",
        "VIGIL_STREAM_SNAPSHOT_EVERY_EVENTS": str(SNAPSHOT_EVERY),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "vigil", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not become ready")


def wait_until_idle(pid: int, *, timeout_s: float = 120.0) -> None:
    """Until the server's start-up work is over (it imports the batch detectors' libraries in the background after
    it is ready): their seconds of CPU would otherwise be counted against the first round."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        before = server_cpu_s(pid)
        time.sleep(0.5)
        if server_cpu_s(pid) - before < 0.05:
            return


def fsync_ms(directory: Path, *, writes: int = 50) -> dict[str, float]:
    """Median time of one 8 KiB record made durable in `directory` (the server's data directory), three ways: an
    appended write + fsync (what a database commit pays at least), the same with fdatasync, and a write into a file
    preallocated with zeros + fdatasync (a log segment as PostgreSQL's: no size metadata to flush on each commit).
    Each acknowledged batch waits for one of these, whatever the server does besides."""
    record = b"\1" * 8192
    times: dict[str, list[float]] = {"fsync": [], "fdatasync": [], "preallocated": []}
    for kind, samples in times.items():
        path = directory / f"sync-probe-{kind}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if kind == "preallocated":
                os.pwrite(fd, b"\0" * len(record) * writes, 0)
                os.fsync(fd)
            sync = os.fsync if kind == "fsync" else os.fdatasync
            for i in range(writes):
                started = time.perf_counter()
                os.pwrite(fd, record, i * len(record))
                sync(fd)
                samples.append((time.perf_counter() - started) * 1000)
        finally:
            os.close(fd)
            path.unlink()
    return {kind: sorted(values)[len(values) // 2] for kind, values in times.items()}


def make_events(n: int) -> list[dict[str, Any]]:
    rng = random.Random(SEED)
    return [{"seq": seq, "values": {f: rng.gauss(0.0, 1.0) for f in FEATURES}} for seq in range(1, n + 1)]


def river_loop(model: Any, events: list[dict[str, Any]]) -> list[float]:
    """River's own loop, continuing `model`: the same pipeline and seed as the stream's (`hst`, min-max scaling)."""
    scores = []
    for x in (e["values"] for e in events):
        scores.append(model.score_one(x))
        model.learn_one(x)
    return scores


def create_stream(client: VigilClient, name: str) -> str:
    # protect=False: every event is learnt, as in River's plain loop, so the scores can be compared one by one.
    created = client.streams.create(
        name=name,
        features=FEATURES,
        algorithm="hst",
        parameters={"seed": SEED},
        threshold={"kind": "quantile", "q": 0.99, "protect": False},
    )
    return str(created["id"])


def histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)  # microseconds, up to a minute


def over_http(
    client: VigilClient, stream_id: str, batches: list[list[dict[str, Any]]], latency: Any, each: list[float]
) -> list[Any]:
    """One request after the other, as a simple client sends; `each` gets every batch's latency in order."""
    results = []
    for batch in batches:
        sent = time.perf_counter()
        answer = client.streams.send(stream_id, batch)
        each.append(time.perf_counter() - sent)
        latency.record_value(max(1, int(each[-1] * 1e6)))
        results += answer["results"]
    return results


def snapshot_batches(each: list[float], *, batch: int) -> tuple[float, float]:
    """Median latency (ms) of the batches that took a snapshot (every `SNAPSHOT_EVERY` events: they also dump the
    model) and of the batches right after them (which swap the model's compacted copy in)."""
    taking = [i for i in range(len(each)) if ((i + 1) * batch) % SNAPSHOT_EVERY == 0]
    after = [i + 1 for i in taking if i + 1 < len(each)]

    def median_ms(group: list[int]) -> float:
        return sorted(each[i] * 1000 for i in group)[len(group) // 2]

    return median_ms(taking), median_ms(after)


def over_websocket(connection: Any, batches: list[list[dict[str, Any]]], latency: Any) -> list[Any]:
    """Pipelined: the SDK keeps up to the server's in-flight bound on the wire."""
    results, sent_at = [], []

    def timed() -> Iterator[list[dict[str, Any]]]:
        for batch in batches:
            sent_at.append(time.perf_counter())
            yield batch

    for index, answer in enumerate(connection.send_all(timed())):
        latency.record_value(max(1, int((time.perf_counter() - sent_at[index]) * 1e6)))
        results += answer["results"]
    return results


def plot(path: Path, series: dict[str, Any]) -> None:
    import matplotlib  # noqa: PLC0415 - only when a plot is asked for

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, hist in series.items():
        points = [(p, hist.get_value_at_percentile(p) / 1000) for p in (1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)]
        ax.plot([p for p, _ in points], [v for _, v in points], marker="o", label=label)
    ax.set_xlabel("percentile")
    ax.set_ylabel("batch latency (ms)")
    ax.set_title("Stream batch latency (100 events per batch)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server process has used: what it cost, whatever else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (a shared machine's load hits all)")
    parser.add_argument("--plot", type=Path, default=None, help="write the latency percentiles as a PNG")
    args = parser.parse_args()

    events = make_events(args.events)
    batches = [events[i : i + args.batch] for i in range(0, len(events), args.batch)]
    per_round = -(-len(batches) // args.rounds)
    rounds = [batches[i : i + per_round] for i in range(0, len(batches), per_round)]
    river = preprocessing.MinMaxScaler() | anomaly.HalfSpaceTrees(seed=SEED)
    river_scores: list[float] = []
    wall = {"river": 0.0, "http": 0.0, "ws": 0.0}
    fsyncs: list[dict[str, float]] = []
    cpu = {"river": 0.0, "http": 0.0, "ws": 0.0}
    latency = {"http": histogram(), "ws": histogram()}
    results: dict[str, list[Any]] = {"http": [], "ws": []}
    http_each: list[float] = []

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server = start_server(Path(tmp), port)
        # Its background imports hold the interpreter lock for seconds: over before anything is measured.
        wait_warm(f"http://127.0.0.1:{port}", deadline=time.monotonic() + 180)
        wait_until_idle(server.pid)
        try:
            with VigilClient(f"http://127.0.0.1:{port}", timeout=120) as client:
                client.login(EMAIL, PASSWORD)
                http_stream, ws_stream = create_stream(client, "http"), create_stream(client, "ws")
                with client.streams.connect(ws_stream) as connection:
                    for chunk in rounds:  # River, HTTP, WebSocket on the same slice of events, round after round
                        fsyncs.append(fsync_ms(Path(tmp)))
                        started, cpu_started = time.perf_counter(), time.process_time()
                        river_scores += river_loop(river, [e for batch in chunk for e in batch])
                        wall["river"] += time.perf_counter() - started
                        cpu["river"] += time.process_time() - cpu_started
                        for name, send in (
                            ("http", lambda c=chunk: over_http(client, http_stream, c, latency["http"], http_each)),
                            ("ws", lambda c=chunk: over_websocket(connection, c, latency["ws"])),
                        ):
                            before, started = server_cpu_s(server.pid), time.perf_counter()
                            results[name] += send()
                            wall[name] += time.perf_counter() - started
                            cpu[name] += server_cpu_s(server.pid) - before
        finally:
            server.terminate()
            server.wait(30)

    for name, label in (("http", "HTTP"), ("ws", "WebSocket")):
        assert [r["seq"] for r in results[name]] == [e["seq"] for e in events], f"{label}: events missing or reordered"
        assert [r["score"] for r in results[name]] == river_scores, f"{label}: scores differ from River's own loop"

    river_rate = args.events / wall["river"]
    print(
        f"events={args.events} features={len(FEATURES)} batch={args.batch} rounds={args.rounds} "
        f"model=MinMaxScaler|HalfSpaceTrees(seed={SEED})"
    )
    print(f"River's own score_one/learn_one loop: {wall['river']:.2f} s  ({river_rate:,.0f} events/s)")
    for name, label in (("http", "HTTP batches"), ("ws", "one WebSocket")):
        rate = args.events / wall[name]
        ratio = rate / river_rate
        target = f" (target >= 0.50: {'met' if ratio >= 0.5 else 'NOT met'})" if name == "http" else ""
        print(
            f"{label:>14}: {wall[name]:.2f} s  ({rate:,.0f} events/s)  ratio {ratio:.2f}{target}  "
            f"batch latency p50 {latency[name].get_value_at_percentile(50) / 1000:.1f} ms  "
            f"p99 {latency[name].get_value_at_percentile(99) / 1000:.1f} ms  "
            f"server CPU {cpu[name]:.2f} s = {cpu[name] / len(batches) * 1000:.2f} ms a batch (River's loop "
            f"{cpu['river']:.2f} s, ratio {cpu['river'] / cpu[name]:.2f})"
        )
    taking, after = snapshot_batches(http_each, batch=args.batch)
    print(
        f"HTTP batches taking a snapshot (every {SNAPSHOT_EVERY:,} events): median latency {taking:.1f} ms, the batch "
        f"after each {after:.1f} ms, all batches p50 {latency['http'].get_value_at_percentile(50) / 1000:.1f} ms"
    )
    # A durable acknowledgement costs at least one fsync per batch, which River's in-memory loop never pays: with
    # sequential requests it bounds the ratio whatever the server does besides.
    sync = {kind: sorted(f[kind] for f in fsyncs)[len(fsyncs) // 2] for kind in fsyncs[0]}
    river_batch_ms = wall["river"] / len(batches) * 1000
    print(
        f"a durable 8 KiB record in the data directory (median of {len(fsyncs)} probes): fsync {sync['fsync']:.2f} ms, "
        f"fdatasync {sync['fdatasync']:.2f} ms, preallocated + fdatasync {sync['preallocated']:.2f} ms; River's loop "
        f"per batch {river_batch_ms:.2f} ms; sequential durable batches cannot beat ratio "
        f"{river_batch_ms / (river_batch_ms + sync['fsync']):.2f} on this disk (fsync)"
    )
    if args.plot is not None:
        plot(args.plot, {"HTTP": latency["http"], "WebSocket": latency["ws"]})
        print(f"latency plot: {args.plot}")


if __name__ == "__main__":
    main()
