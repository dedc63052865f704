"""Profiles the request path of a real server with py-spy (every thread, sampled from outside the process):
authenticated `GET /me` and 100-row JSON detect requests. Writes the collapsed stacks and prints the functions
that hold the most samples, by own time and by time including callees.

    python benchmarks/profile_hot_path.py [--requests 1000] [--out profile.txt] [--top 30]
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import time
from pathlib import Path

from harness import random_frame, running_server, train, upload


def summarise(collapsed: Path, top: int) -> None:
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    print(f"{total} samples")
    for title, counter in (("own time", own), ("including callees", inclusive)):
        print(f"\n-- top {top} by {title} --")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / total:6.1f}%  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--only", choices=("me", "detect", "both"), default="both")
    args = parser.parse_args()
    py_spy = Path(sys.executable).with_name("py-spy")
    with running_server() as server:
        api = server.api()
        dataset = upload(api, random_frame(5_000, 9))
        detector, _ = train(api, dataset["id"])
        rows = random_frame(100, 9, seed=1).to_dicts()
        url = f"/detectors/{detector['id']}/detect"
        api.post(url, json={"records": rows}).raise_for_status()  # the model loaded once before sampling
        spy = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(server.process.pid),
                "--format",
                "raw",
                "-o",
                str(args.out),
                "--rate",
                "200",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1)
        for _ in range(args.requests):
            if args.only in ("me", "both"):
                api.get("/me").raise_for_status()
            if args.only in ("detect", "both"):
                api.post(url, json={"records": rows}).raise_for_status()
        spy.send_signal(subprocess.signal.SIGINT)
        spy.wait(60)
    summarise(args.out, args.top)


if __name__ == "__main__":
    main()
