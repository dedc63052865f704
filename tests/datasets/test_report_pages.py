"""The HTML reports read well in a real browser: rendered in headless Chromium at a desktop and a phone width,
nothing spills past the page's width, and every plot says what its axes are."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from tests.detectors.test_workflow import upload
from tests.web.test_docs import _chromium

# Appended to a saved page: after layout, what overflows the viewport, and the plots' alt texts.
PROBE = """<script>
window.addEventListener('load', () => {
  const width = document.documentElement.clientWidth;
  const wide = [...document.querySelectorAll('body *')]
    .filter(el => el.getBoundingClientRect().right > width + 1 && !el.closest('.scroll'))
    .map(el => el.tagName + (el.className ? '.' + el.className : ''));
  const plots = [...document.images].map(img => img.alt);
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({width, page: document.documentElement.scrollWidth, wide, plots});
  document.body.appendChild(out);
});
</script>"""


def probe(chromium: str, page: Path, width: int, tmp_path: Path) -> dict[str, object]:
    result = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / f'profile-{width}'}", f"--window-size={width},900",
            "--virtual-time-budget=10000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stdout[-2000:]
    text = found.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    loaded: dict[str, object] = json.loads(text)
    return loaded


@pytest.mark.slow
def test_each_report_fits_the_page_and_labels_its_plots(client: TestClient, tenant: Tenant, tmp_path: Path) -> None:
    chromium = _chromium()
    rng = np.random.default_rng(0)
    frame = pl.DataFrame(
        {
            **{f"a_rather_long_feature_name_{i}": rng.normal(i, 1 + i, 400) for i in range(8)},
            "count": rng.integers(1, 10, 400),
            "label": rng.integers(0, 2, 400),
        }
    )
    dataset_id = upload(client, tenant.analyst, frame, name="pages")
    for kind in ("profile", "quality", "analysis"):
        made = client.post(f"/api/v1/datasets/{dataset_id}/{kind}", json={}, headers=tenant.analyst)
        assert made.status_code == 201, made.text
        page = tmp_path / f"{kind}.html"
        html = client.get(f"/api/v1/datasets/{dataset_id}/{kind}.html", headers=tenant.analyst).text
        # The page's own policy forbids scripts; the probe is the test's, so the copy under test drops it.
        html = re.sub(r"<meta http-equiv='Content-Security-Policy'[^>]*>", "", html)
        page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
        for width in (1280, 420):
            seen = probe(chromium, page, width, tmp_path)
            assert seen["page"] <= seen["width"], (kind, width, seen["wide"])  # type: ignore[operator]
            assert not seen["wide"], (kind, width, seen["wide"])
            plots = seen["plots"]
            assert isinstance(plots, list)
            for alt in plots:
                assert " by " in alt or " against " in alt or " vs " in alt, (kind, alt)
