"""The orphan-blob sweep: deletes blobs that no database row refers to, once older than `blob_orphan_grace_s`.

Writers store a blob first and record its row afterwards (no slow I/O while SQLite's write lock is held), so a
process killed between the two, or a failed request whose clean-up did not run, leaves a blob nothing refers to.
The sweep walks the store tenant by tenant (`tenants/<id>/<family>/…`), a page of keys at a time, and asks the
domain that writes each family which keys its rows refer to (`BlobFamily`: lent by the domains, wired in
`vigil.app`). Keys in a directory no family claims are left alone: a new kind of blob is never deleted by a sweep
that does not know its rows.

A writer racing the sweep is safe: a blob younger than the grace is never a candidate (the grace is far above any
put -> record gap), and right before a candidate is deleted its rows are asked again and its age read again (a
retried job may write the same key anew).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice

from sqlalchemy.orm import Session

from vigil.core.blobs import BlobInfo, BlobStore
from vigil.core.database import Database, TenantScope
from vigil.core.metrics import Metrics

log = logging.getLogger("vigil.blobs")
TENANTS = "tenants"
PAGE = 500  # keys asked about in one query, and held at once
MAX_PER_RUN = 10_000  # orphans one run deletes at most; the next run goes on (a backlog drains run by run)

# Of `keys` (all under one tenant), the ones that rows of the tenant refer to.
Referrer = Callable[[Session, TenantScope, list[str]], Collection[str]]
# A page of the keys the tenant's rows refer to, in key order, after the given key (for the missing-blob check).
StoredKeys = Callable[[Session, TenantScope, str | None, int], Sequence[str]]


def no_rows(session: Session, scope: TenantScope, keys: list[str]) -> Collection[str]:
    """For blobs no row ever refers to (a local store's staged uploads): every one is an orphan past the grace."""
    return ()


@dataclass(frozen=True)
class BlobFamily:
    directory: str  # right under the tenant's prefix, e.g. "datasets"
    referenced: Referrer
    stored: StoredKeys | None = None  # for families whose rows must find their blob (not a job's passing scratch)


@dataclass(frozen=True)
class BlobFamilies:
    """The families the app's domains write (provided to the app context)."""

    families: tuple[BlobFamily, ...]


@dataclass
class SweepReport:
    scanned: int = 0
    orphans: int = 0  # deleted, or (dry run) that would be
    orphan_bytes: int = 0
    kept_young: int = 0  # unreferenced, but within the grace
    unknown: list[str] = field(default_factory=list)  # directories of no known family, left alone
    truncated: bool = False  # stopped at the run's bound: the next run goes on


def sweep_orphan_blobs(
    *,
    database: Database,
    blobs: BlobStore,
    families: Collection[BlobFamily],
    grace_s: float,
    dry_run: bool = False,
    tenant: str | None = None,
    limit: int = MAX_PER_RUN,
    metrics: Metrics | None = None,
    on_orphan: Callable[[BlobInfo], None] | None = None,
    clock: Callable[[], float] = time.time,
) -> SweepReport:
    """Deletes (or, `dry_run`, only reports) the unreferenced blobs older than `grace_s`, of every tenant or one."""
    report = SweepReport()
    by_directory = {family.directory: family for family in families}
    tenants = [tenant] if tenant is not None else blobs.subdirectories(TENANTS)
    for tenant_id in tenants:
        scope = TenantScope(tenant_id)
        prefix = f"{TENANTS}/{tenant_id}"
        for directory in blobs.subdirectories(prefix):
            family = by_directory.get(directory)
            if family is None:
                report.unknown.append(f"{prefix}/{directory}")
                continue
            for page in _pages(blobs.walk(f"{prefix}/{directory}")):
                report.scanned += len(page)
                cutoff = clock() - grace_s
                with database.session() as session:
                    referenced = set(family.referenced(session, scope, [b.key for b in page]))
                unreferenced = [b for b in page if b.key not in referenced]
                candidates = [b for b in unreferenced if b.modified < cutoff]
                report.kept_young += len(unreferenced) - len(candidates)
                candidates = candidates[: max(0, limit - report.orphans)]
                if not dry_run:
                    candidates = _still_orphans(database, blobs, family, scope, candidates, grace_s, clock)
                for blob in candidates:
                    if not dry_run:
                        blobs.delete(blob.key)
                        log.info("deleted orphan blob %s (%d bytes)", blob.key, blob.size)
                        if metrics is not None:
                            metrics.orphan_blobs.inc()
                            metrics.orphan_blob_bytes.inc(blob.size)
                    report.orphans += 1
                    report.orphan_bytes += blob.size
                    if on_orphan is not None:
                        on_orphan(blob)
                if report.orphans >= limit:
                    report.truncated = True
                    return _logged(report, dry_run)
    return _logged(report, dry_run)


def _still_orphans(
    database: Database,
    blobs: BlobStore,
    family: BlobFamily,
    scope: TenantScope,
    candidates: list[BlobInfo],
    grace_s: float,
    clock: Callable[[], float],
) -> list[BlobInfo]:
    """The candidates that, asked again right before their deletion, still have no row and are still old: a row
    recorded since the listing keeps its blob, and so does a key written anew (a retried job's artifact)."""
    if not candidates:
        return []
    with database.session() as session:
        referenced = set(family.referenced(session, scope, [b.key for b in candidates]))
    cutoff = clock() - grace_s
    still = []
    for blob in candidates:
        if blob.key in referenced:
            continue
        now = blobs.stat(blob.key)
        if now is not None and now.modified < cutoff:
            still.append(now)
    return still


def _pages(blobs: Iterator[BlobInfo]) -> Iterator[list[BlobInfo]]:
    while page := list(islice(blobs, PAGE)):
        yield page


def _logged(report: SweepReport, dry_run: bool) -> SweepReport:
    if report.orphans or report.unknown:
        log.info(
            "orphan blob sweep%s: %d of %d blob(s) %s (%d bytes), %d unreferenced kept within the grace%s%s",
            " (dry run)" if dry_run else "",
            report.orphans,
            report.scanned,
            "would go" if dry_run else "deleted",
            report.orphan_bytes,
            report.kept_young,
            f"; left alone (no known family): {', '.join(report.unknown[:10])}" if report.unknown else "",
            "; stopped at the run's bound" if report.truncated else "",
        )
    return report


def missing_blobs(
    *, database: Database, blobs: BlobStore, families: Collection[BlobFamily], tenants: Iterable[str]
) -> Iterator[str]:
    """The keys rows refer to whose blob is not in the store (the other way round from an orphan: a row that lost
    its bytes), a page of rows at a time: a check for after a crash, one existence check per row."""
    for tenant_id in tenants:
        scope = TenantScope(tenant_id)
        for family in families:
            if family.stored is None:
                continue
            after: str | None = None
            while True:
                with database.session() as session:
                    page = family.stored(session, scope, after, PAGE)
                for key in page:
                    if not blobs.exists(key):
                        yield key
                if len(page) < PAGE:
                    break
                after = page[-1]
