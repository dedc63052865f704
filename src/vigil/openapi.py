"""`python -m vigil.openapi`: prints the OpenAPI document the server serves (committed as docs/openapi.json)."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from vigil.app import create_app
from vigil.config import Settings


def openapi_document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), environment="test", secret_key="x" * 48)
        return create_app(settings, run_workers=False).openapi()


def main() -> None:
    json.dump(openapi_document(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
