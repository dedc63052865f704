"""The public Python SDK of Vigil: a small, typed, synchronous client of the v1 REST API (httpx).

>>> from vigil.client import VigilClient
>>> with VigilClient("http://127.0.0.1:8000") as vigil:  # doctest: +SKIP
...     vigil.login("ana@acme.example", "a long analyst passphrase")
...     dataset = vigil.datasets.upload("examples/breastw.csv", name="breastw")

It knows nothing of the server's code (an import-linter contract says so): it speaks HTTP only, so it works
against any deployment, and the validation suite uses it as a black-box client.
"""

from vigil.client.client import VigilClient
from vigil.client.errors import JobTimeout, VigilAPIError, VigilConnectionError, VigilError
from vigil.client.streams import AsyncStreamConnection, StreamClosed, StreamConnection

__all__ = [
    "AsyncStreamConnection",
    "JobTimeout",
    "StreamClosed",
    "StreamConnection",
    "VigilAPIError",
    "VigilClient",
    "VigilConnectionError",
    "VigilError",
]
