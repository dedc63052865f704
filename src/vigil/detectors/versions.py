"""Model-version use cases: read one, promote it, roll back, delete old ones, compare two on a dataset, and move one
between tenants or installations as a signed export (`vigil.ml.exchange`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from vigil import ml
from vigil.core.context import AppContext
from vigil.core.database import TenantScope
from vigil.core.errors import ArtifactIntegrity, Conflict, IncompatibleArtifact, InvalidInput, InvalidState, NotFound
from vigil.core.ids import new_id
from vigil.detectors.artifact_cache import models as model_cache
from vigil.detectors.feedback import FeedbackService
from vigil.detectors.models import Detector, ModelVersion
from vigil.detectors.schemas import DetectorPublic, ModelVersionPublic, SigningKey, VersionComparison, VersionSide
from vigil.detectors.service import DetectorService, ml_problem, version_public
from vigil.identity.quotas import policy_of

METRICS = ("roc_auc", "pr_auc", "precision_at_k")


class VersionService:
    def __init__(self, *, session: Session, scope: TenantScope, app: AppContext) -> None:
        self.session = session
        self.scope = scope
        self.app = app
        self.service = DetectorService(session=session, scope=scope, app=app)
        self.detectors = self.service.detectors

    def _version(self, detector: Detector, number: int) -> ModelVersion:
        version = self.detectors.version(detector.id, number)
        if version is None:
            # Another detector's version number is simply not one of this detector's versions.
            raise NotFound("model version", f"{detector.id}@{number}")
        return version

    def get(self, *, detector_id: str, version: int) -> ModelVersionPublic:
        detector = self.service._get(detector_id)
        return version_public(detector, self._version(detector, version))

    def promote(self, *, detector_id: str, version: int) -> DetectorPublic:
        detector = self.service._get(detector_id)
        self._version(detector, version)
        if detector.status == "training" and detector.current_version is None:
            raise InvalidState("The detector's first training has not finished yet.", detector_status=detector.status)
        self.service.activate(detector, version)
        self.session.commit()
        return DetectorPublic.model_validate(detector)

    def rollback(self, *, detector_id: str) -> DetectorPublic:
        """Back to the version that was active before the current one (deleted versions are skipped)."""
        detector = self.service._get(detector_id)
        existing = set(self.detectors.version_numbers(detector_id))
        history = [v for v in (detector.previous_versions or []) if v in existing and v != detector.current_version]
        if not history:
            raise InvalidState("There is no earlier active version to roll back to.", detector_status=detector.status)
        detector.current_version = history.pop()
        detector.previous_versions = history
        self.session.commit()
        return DetectorPublic.model_validate(detector)

    def delete(self, *, detector_id: str, version: int) -> None:
        detector = self.service._get(detector_id)
        row = self._version(detector, version)
        if detector.current_version == version:
            raise Conflict(
                f"Version {version} is the active one; promote another version before deleting it.",
                active_version=version,
            )
        key = row.artifact_key
        self.detectors.delete_version(row)
        detector.previous_versions = [v for v in (detector.previous_versions or []) if v != version]
        self.session.commit()
        model_cache.forget([key])
        self.app.blobs.delete(key, best_effort=True)

    # -- comparison --------------------------------------------------------------------------------------------
    def compare(self, *, detector_id: str, a: int, b: int, dataset_id: str) -> VersionComparison:
        """Both versions score the dataset: how their scores rank alike, how their flags overlap, and, on the
        dataset's held-out labelled rows, each one's quality and the difference."""
        _, version_a, model_a = self.service.load_model(detector_id=detector_id, version=a)
        _, version_b, model_b = self.service.load_model(detector_id=detector_id, version=b)
        dataset = self.service.datasets.get(dataset_id=dataset_id)
        limit = self.app.settings.compare_max_rows
        if dataset.rows > limit:
            raise InvalidInput(
                f"Versions are compared on datasets of at most {limit} rows; this one has {dataset.rows}.",
                limit=limit,
            )
        columns = sorted(set(model_a.features) | set(model_b.features))
        present = {c["name"] for c in self.service.datasets.schema_of(dataset_id=dataset_id)}
        missing = [c for c in columns if c not in present]
        if missing:
            raise InvalidInput(
                f"The dataset lacks feature column(s) {', '.join(map(repr, missing[:10]))} of these versions.",
                errors=[{"loc": ["body", "dataset_id"], "msg": f"missing column {c!r}"} for c in missing[:50]],
            )
        frame = self.service.datasets.load_frame(dataset_id=dataset_id, columns=columns)
        try:
            scores_a, scores_b = model_a.score(frame), model_b.score(frame)
        except ml.MLError as exc:
            raise ml_problem(exc) from exc
        flags_a, flags_b = scores_a > model_a.threshold, scores_b > model_b.threshold
        agreement = ml.agreement(scores_a, flags_a, scores_b, flags_b)
        labels, held_out = FeedbackService(session=self.session, scope=self.scope, app=self.app).for_rows(
            detector_id=detector_id, dataset_id=dataset_id, rows=frame.height
        )
        quality_a = ml.quality(labels[held_out], scores_a[held_out]) if held_out.any() else None
        quality_b = ml.quality(labels[held_out], scores_b[held_out]) if held_out.any() else None
        deltas = None
        if quality_a is not None and quality_b is not None:
            deltas = {
                m: (quality_b[m] - quality_a[m]) if quality_a[m] is not None and quality_b[m] is not None else None
                for m in METRICS
            }
        return VersionComparison(
            detector_id=detector_id,
            dataset_id=dataset_id,
            rows=frame.height,
            a=VersionSide(
                version=version_a.version, threshold=model_a.threshold, flagged=int(flags_a.sum()), metrics=quality_a
            ),
            b=VersionSide(
                version=version_b.version, threshold=model_b.threshold, flagged=int(flags_b.sum()), metrics=quality_b
            ),
            spearman=agreement["spearman"],
            flagged_both=agreement["flagged_both"],
            flagged_jaccard=agreement["flagged_jaccard"],
            metric_deltas=deltas,
        )

    # -- export and import -------------------------------------------------------------------------------------
    def _seed(self) -> bytes:
        return ml.signing_seed(self.app.secret_key)

    def signing_key(self) -> SigningKey:
        public = ml.public_key(self._seed())
        return SigningKey(public_key=public, key_id=ml.key_id(public))

    def export(self, *, detector_id: str, version: int) -> tuple[bytes, str]:
        """The version as a signed export, and a file name for it."""
        detector, row, model = self.service.load_model(detector_id=detector_id, version=version)
        manifest: dict[str, Any] = {
            "format": "vigil-model-export",
            "detector": {"name": detector.name, "algorithm": detector.algorithm},
            "version": row.version,
            "algorithm": row.algorithm,
            "features": list(row.features),
            "threshold": float(row.threshold),
            "training_rows": row.training_rows,
            "dataset": row.dataset,
            "metrics": row.metrics,
            "exported_at": datetime.now(UTC).isoformat(),
            "signer_key_id": self.signing_key().key_id,
        }
        data = ml.seal_export(model, manifest=manifest, seed=self._seed())
        return data, f"{detector.id}-v{row.version}.vigilexport"

    def import_(self, *, detector_id: str, data: bytes, promote: bool) -> ModelVersionPublic:
        """A new version of this detector from an export signed by this installation or a key the tenant trusts.

        Nothing is unpickled before the signature and the signer are checked; the model is then stored as an
        artifact signed with this server's own key, like any trained version.
        """
        detector = self.service._get(detector_id)
        policy = policy_of(self.session, self.scope, self.app.settings)
        trusted = [ml.public_key(self._seed()), *policy.trusted_model_keys]
        try:
            model, manifest, signer = ml.open_export(data, trusted=trusted)
        except ml.UntrustedSigner as exc:
            raise ArtifactIntegrity(
                "The export is signed by a key this tenant does not trust; add the exporting installation's "
                "public key (GET /api/v1/model-signing-key there) to trusted_model_keys in the tenant settings.",
            ) from exc
        except ml.ArtifactTampered as exc:
            raise ArtifactIntegrity(f"The export was refused: {exc}") from exc
        except ml.ArtifactIncompatible as exc:
            raise IncompatibleArtifact(
                f"{exc} Export it again from an installation with this one's versions, or train the detector here.",
                written_by=exc.written_by,
                read_by=exc.read_by,
            ) from exc
        if model.algorithm != detector.algorithm:
            raise InvalidInput(
                f"The export holds a {model.algorithm!r} model; this detector's algorithm is {detector.algorithm!r}.",
                errors=[{"loc": ["body"], "msg": "algorithm mismatch", "type": "algorithm_mismatch"}],
            )
        key = self.app.blobs.key(self.scope, "models", detector.id, f"{new_id('imp')}.vmdl")
        size = self.service.store_artifact(key, ml.dump_artifact(model, key=self.app.artifact_key))
        origin = {
            "imported_at": datetime.now(UTC).isoformat(),
            "signer_key_id": ml.key_id(signer),
            "source_version": manifest.get("version"),
            "source_detector": manifest.get("detector"),
            "exported_at": manifest.get("exported_at"),
        }
        number = self.service.record_version(
            detector_id=detector.id,
            job_id=None,
            payload={
                "dataset_id": str((manifest.get("dataset") or {}).get("id") or "imported"),
                "algorithm": model.algorithm,
                "parameters": model.parameters,
                "preprocessing": _spec(model),
            },
            artifact_key=key,
            model=model,
            size_bytes=size,
            dataset=manifest.get("dataset"),
            metrics=manifest.get("metrics"),
            origin=origin,
            promote=promote,
        )
        self.session.commit()
        return version_public(detector, self._version(detector, number))


def _spec(model: ml.FittedDetector) -> dict[str, Any]:
    spec = model.preprocessor.spec
    return {"scaling": spec.scaling, "categorical": spec.categorical, "missing": spec.missing}
