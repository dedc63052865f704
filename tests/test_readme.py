"""The README's walkthrough works when pasted, in one shell, in order: the curl form, the SDK form, the CLI form,
explain/teach/judge, the reports, the API key, and the validation command (as `--help`: the suite itself is not
rerun here) — against a live server, with only the superadmin's credentials filled in and the server's address in
`VIGIL`, the README's way to name another port. The streaming section has its own test (tests/streams/)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from tests.client.live_server import live_server
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def walkthrough_blocks() -> list[tuple[str, str]]:
    """(language, code) of each block of the walkthrough but its streaming section, in order."""
    text = README.read_text()
    walkthrough = text[text.index("## Walkthrough") : text.index("### Streaming")]
    validation = text[text.index("Then prove the deployment works") : text.index("## Scale out")]
    return re.findall(r"```(bash|python)\n(.*?)```", walkthrough + validation, flags=re.S)


def shell_script(blocks: list[tuple[str, str]], scripts: Path) -> str:
    """The blocks as one shell session: bash pasted as is, each Python block run by the venv's `python3`."""
    parts = []
    for number, (language, code) in enumerate(blocks):
        if language == "python":
            path = scripts / f"block_{number}.py"
            path.write_text(code)
            parts.append(f"python3 {path}\n")
        else:
            parts.append(code)
    return "".join(parts)


def scores(path: Path) -> tuple[list[int], list[float]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [int(row["malignant"]) for row in rows], [float(row["score"]) for row in rows]


@pytest.mark.slow
@pytest.mark.timeout(600)  # eight `vigil` commands and an SDK run: minutes on a loaded machine
def test_the_walkthrough_runs_as_pasted(tmp_path: Path) -> None:
    blocks = walkthrough_blocks()
    assert [language for language, _ in blocks] == ["bash", "python", "bash", "bash", "bash", "bash", "bash"]
    scripts, work = tmp_path / "scripts", tmp_path / "work"
    scripts.mkdir()
    work.mkdir()
    script = (
        shell_script(blocks, scripts)
        .replace("admin@vigil.local", ADMIN_EMAIL)
        .replace("PASTE-THE-PRINTED-PASSWORD", ADMIN_PASSWORD)
        .replace("vigil validate smoke", "vigil validate smoke --help")  # that the command is found, from there
    )
    with live_server(tmp_path / "data") as url:
        env = {
            **os.environ,
            "VIGIL": url,  # as after `make run PORT=…`: every form must read the address from here
            "TMPDIR": str(work),  # where the walkthrough's `mktemp -d` lands, to find its files
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",  # this venv, wherever it is
            "HOME": str(tmp_path),  # `vigil login` keeps its credentials here, not in the tester's home
        }
        shell = subprocess.run(
            ["bash", "-e", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=540, check=False
        )
    assert shell.returncode == 0, shell.stdout[-3000:] + shell.stderr[-3000:]
    out = shell.stdout
    (files,) = work.iterdir()  # the walkthrough's own temporary directory

    # curl: the training job succeeded; of the two inline records only the second (all cells abnormal) is flagged.
    assert re.search(r"(?m)^succeeded$", out), out[:2000]
    two = r'"results":\[\{"index":0,[^}]*"is_anomaly":(\w+)[^}]*\},\{"index":1,[^}]*"is_anomaly":(\w+)'
    inline = re.search(two, out)
    assert inline is not None, out[:3000]
    assert inline.groups() == ("false", "true"), out[:3000]
    # …and on the whole dataset the scores separate malignant from benign with a ROC-AUC above 0.95.
    assert roc_auc_score(*scores(files / "scored.csv")) > 0.95

    # SDK: the printed ROC-AUC, and the profile page written.
    sdk_auc = re.search(r"ROC-AUC (\d\.\d+)", out)
    assert sdk_auc is not None, out
    assert float(sdk_auc.group(1)) > 0.95, out
    assert "<img" in (files / "profile.html").read_text()  # the SDK's page, then the curl one over it

    # CLI: the file scored locally and the dataset scored as a job give the same scores.
    labels, local = scores(files / "scored-cli.csv")
    assert scores(files / "scored-job.csv") == (labels, local)
    assert roc_auc_score(labels, local) > 0.95

    # Explain: each row's top features; the API key scores as the analyst did.
    assert "'explanation': [{'feature':" in out
    assert len(re.findall(r"\[\{'index': 0, 'score': -?[\d.e-]+, 'is_anomaly': (?:True|False)", out)) == 2, out
    # The validation command was found from the walkthrough's directory (its --help printed).
    assert "Usage: vigil validate smoke" in " ".join(out.split())
