"""The README's streaming section works when pasted: the walkthrough's log-in block, then the streaming curl block
and the SDK-over-WebSocket block, run as written against a live server (only its address and the superadmin's
password are filled in)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.client.live_server import live_server
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from vigil.client import VigilClient

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def code_blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_the_streaming_section_runs_as_pasted(tmp_path: Path) -> None:
    text = README.read_text()
    walkthrough = text[text.index("## Walkthrough") :]
    log_in = code_blocks(walkthrough, "bash")[0]
    log_in = log_in[: log_in.index('AUTH="Authorization: Bearer $TOKEN"')] + 'AUTH="Authorization: Bearer $TOKEN"\n'
    streaming = walkthrough[walkthrough.index("### Streaming") :]
    curl_block, sdk_block = code_blocks(streaming, "bash")[0], code_blocks(streaming, "python")[0]

    with live_server(tmp_path / "data") as url:
        script = (
            log_in.replace("admin@vigil.local", ADMIN_EMAIL).replace("PASTE-THE-PRINTED-PASSWORD", ADMIN_PASSWORD)
            + curl_block
        )
        env = {**os.environ, "VIGIL": url}  # the README's way to name the server's address, in every form
        shell = subprocess.run(
            ["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        assert shell.returncode == 0, shell.stderr
        # The first batch's last_seq, printed after the new user's JSON (curl adds no newline), as the comment says.
        assert re.search(r"(?m)\b800$", shell.stdout), shell.stdout

        sdk = subprocess.run(
            [sys.executable, "-c", sdk_block],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert sdk.returncode == 0, sdk.stderr
        lines = sdk.stdout.splitlines()
        assert [line.split(" ", 1)[0] for line in lines] == [str(s) for s in range(100, 1001, 100)]
        # As its comment says: the failing pump (701) flagged, and 800 (nearly 4 σ out in the seeded data) with it.
        assert lines[7] == "800 [701, 800]", lines

        with VigilClient(url) as analyst:
            analyst.login("ana@acme.example", "a long analyst passphrase")
            streams = {s["name"]: s for s in analyst.streams.list()["items"]}
            pumps = streams["pumps"]
            # 800 events, then 800 again (a duplicate: not learnt) and 801, far out and flagged.
            assert (pumps["last_seq"], pumps["events_seen"]) == (801, 801)
            # 800 flagged when first sent (the note under the curl block), 801 far out.
            assert sorted(a["seq"] for a in analyst.streams.anomalies(pumps["id"])["items"]) == [800, 801]
            assert streams["pumps-ws"]["events_seen"] == 1000
