"""The public Python SDK of Vigil: a small, typed, synchronous client of the v1 REST API (httpx).

>>> from vigil.client import VigilClient
>>> with VigilClient("http://127.0.0.1:8000") as vigil:  # doctest: +SKIP
...     vigil.login("ana@acme.example", "a long analyst passphrase")
...     dataset = vigil.datasets.upload("examples/breastw.csv", name="breastw")

Tables go in and come out as pandas, polars or pyarrow (`datasets.upload(frame)`, `datasets.to_frame(id,
kind="pandas")`, `detectors.score(id, frame)`); `Detector(vigil, "iforest").fit(frame).decision_function(frame)`
is the scikit-learn way; `jobs.wait(id, progress=True)` draws a progress bar; requests are retried safely.

It knows nothing of the server's code (an import-linter contract says so): it speaks HTTP only, so it works
against any deployment, and the validation suite uses it as a black-box client.
"""

from vigil.client.client import VigilClient
from vigil.client.errors import JobFailed, JobTimeout, VigilAPIError, VigilConnectionError, VigilError
from vigil.client.estimator import Detector
from vigil.client.retry import NO_RETRY, RetryPolicy
from vigil.client.stream_async import AsyncStreamConnection
from vigil.client.stream_protocol import StreamClosed
from vigil.client.stream_sync import StreamConnection

__all__ = [
    "NO_RETRY",
    "AsyncStreamConnection",
    "Detector",
    "JobFailed",
    "JobTimeout",
    "RetryPolicy",
    "StreamClosed",
    "StreamConnection",
    "VigilAPIError",
    "VigilClient",
    "VigilConnectionError",
    "VigilError",
]
