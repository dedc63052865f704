"""A 201's `Location`: where the resource a request made is read — the same path from which a retry whose answer
was lost reads it back (`replay_created`), so a route names it once. A 202's: the job doing the work."""

from __future__ import annotations

import string
from typing import Any, TypeVar

from starlette.responses import Response

R = TypeVar("R")

JOB = "/api/v1/jobs/{id}"


def location_header(description: str) -> dict[str, Any]:
    """A response's documented `Location` header (merged into an operation's `responses` entry)."""
    return {"headers": {"Location": {"description": description, "schema": {"type": "string"}}}}


# A creating route's `responses`; an accepting one's (its answer is the job).
CREATED: dict[int | str, dict[str, Any]] = {201: location_header("The created resource's path.")}
JOB_LOCATION = location_header("The job's path: its status, its progress and, once it has ended, its result.")
ACCEPTED: dict[int | str, dict[str, Any]] = {202: JOB_LOCATION}


def created(response: Response, location: str, resource: R, **known: object) -> R:
    """`resource`, answered with its `Location`: `location` with the resource's attributes filled in (e.g.
    "/api/v1/datasets/{id}"), or what the route `known`s (a path parameter the resource does not carry)."""
    names = {name for _, name, _, _ in string.Formatter().parse(location) if name}
    values = {name: known[name] if name in known else getattr(resource, name) for name in names}
    response.headers["Location"] = location.format(**values)
    return resource
