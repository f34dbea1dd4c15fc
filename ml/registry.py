"""The model registry: MLflow's local store that ``smartfarm train`` writes and the workers follow.

Training opens a ``Registry.run``: the run logs its parameters, the data hash (``data_sha256``), the library
versions and the metrics against the baselines, and ``TrainingRun.register`` stores each model as a joblib file,
records the file's sha256 on a new registered model version and moves the alias (``champion``) to it only when it
beats the baseline on held-out seasons. Workers hold a ``Follower`` that loads the promoted version and picks up a
newly promoted one from their own loop, without a restart and without a thread.

Integrity: ``Registry.load`` hashes the stored bytes and compares them with the checksum recorded at registration
before anything is unpickled, and unpickles exactly the bytes it hashed. A corrupt or tampered file is refused
(``ModelIntegrityError``) and a ``Follower`` keeps serving the last good model. This guards the artifact folder;
whoever can write the database can rewrite the recorded checksum too, so the store as a whole is trusted.

Store choice: sqlite (``sqlite:///<store>/mlflow.db``, artifacts in ``<store>/artifacts``), no server. MLflow 3
made sqlite its default tracking URI (``mlflow.store.tracking.DEFAULT_TRACKING_URI``), keeps the file store only
for existing ``mlruns`` folders and ships a migration off it (``mlflow.store.fs2db``); one sqlite file holds both
the runs and the registry (versions, tags, aliases) with transactions, which several processes reading while the
trainer writes need. ``mlflow ui --backend-store-uri sqlite:///<absolute store>/mlflow.db`` shows every run: each
experiment records the absolute artifact folder, so no ``--default-artifact-root`` is needed to read them.

Telemetry: MLflow 3.17 decides when it is imported (``mlflow/__init__.py`` calls ``set_telemetry_client``) and
whenever it records an event (``mlflow/telemetry/utils.py``, ``is_telemetry_disabled``) whether to send usage data
to mlflow.org. It reads ``MLFLOW_DISABLE_TELEMETRY`` (true or 1) and ``DO_NOT_TRACK``, the latter only when it is
exactly "true": the customary ``DO_NOT_TRACK=1`` alone would not stop it. This module sets both before it imports
mlflow unless the environment already has them, and drops a telemetry client an earlier import started. Export
them yourself before ``mlflow ui``, which is another process.
"""

from __future__ import annotations

import os
import sys

_MLFLOW_WAS_IMPORTED = "mlflow" in sys.modules
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

# The imports below come after the environment above on purpose: mlflow reads it when it is imported.
import hashlib  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator, Mapping  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from importlib import metadata  # noqa: E402
from pathlib import Path  # noqa: E402

import joblib  # noqa: E402
import mlflow.artifacts  # noqa: E402
import pandas as pd  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param, RunStatus  # noqa: E402
from mlflow.entities.model_registry import ModelVersion  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from ml.settings import ModelSettings  # noqa: E402
from smartfarm.errors import ModelIntegrityError, RegistryError  # noqa: E402

if _MLFLOW_WAS_IMPORTED:
    from mlflow.telemetry import set_telemetry_client

    set_telemetry_client()  # re-reads the environment set above; drops the client when telemetry is disabled

__all__ = ["Follower", "LoadedModel", "ModelVersionInfo", "Registry", "TrainingRun", "library_versions"]

log = logging.getLogger(__name__)

LIBRARIES = ("numpy", "pandas", "scikit-learn", "xgboost", "joblib", "mlflow", "smartfarm")
"""Distributions whose versions every training run records (besides Python's)."""

MODEL_FILE = "model.joblib"
"""Name of the joblib file inside a version's artifact folder ``models/<name>/<sha256 prefix>/`` of its run."""

SHA256_TAG = "sha256"
BEATS_BASELINE_TAG = "beats_baseline"
DATA_SHA256 = "data_sha256"
METRIC_TAG_PREFIX = "metric."

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
_PAGE = 1000


@dataclass(frozen=True)
class ModelVersionInfo:
    """One registered model version as the registry records it.

    Args:
        sha256: the checksum of the model file recorded at registration; None for a version registered by
            something else, which ``Registry.load`` refuses.
        promoted: the registry's alias (``champion``) points at this version.
    """

    name: str
    version: int
    run_id: str
    created: datetime
    metrics: Mapping[str, float]
    sha256: str | None
    beats_baseline: bool
    promoted: bool
    description: str
    source: str


@dataclass(frozen=True)
class LoadedModel:
    """A model version and the object unpickled from its checked file."""

    info: ModelVersionInfo
    model: object

    @property
    def version(self) -> int:
        return self.info.version


def library_versions() -> dict[str, str]:
    """The Python version and those of ``LIBRARIES``, as ``lib.<name>`` params ("absent" when not installed)."""
    found = {"lib.python": platform.python_version()}
    for dist in LIBRARIES:
        try:
            found[f"lib.{dist}"] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[f"lib.{dist}"] = "absent"
    return found


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@contextmanager
def _mlflow_errors(doing: str, model: str | None = None, version: int | None = None) -> Iterator[None]:
    """Translate MLflow's and the file system's errors into ``RegistryError``: "could not <doing>: <why>"."""
    try:
        yield
    except MlflowException as exc:
        raise RegistryError(f"could not {doing}: {exc.message}", model, version) from exc
    except OSError as exc:
        raise RegistryError(f"could not {doing}: {exc}", model, version) from exc


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise RegistryError(f"invalid model name {name!r}: use letters, digits, '.', '_' or '-' (at most 100)", name)
    return name


def _fix(name: str) -> str:
    return (
        f"Retrain with `smartfarm train`, or promote a version that passes with "
        f"`smartfarm models --promote {name} VERSION`."
    )


class Registry:
    """A typed layer over ``MlflowClient`` on the local store of ``settings``; MLflow errors become ours."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        with _mlflow_errors(f"create the model store folder {settings.store}"):
            settings.store.mkdir(parents=True, exist_ok=True)
        self.client = MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)

    @property
    def alias(self) -> str:
        return self.settings.alias

    @contextmanager
    def run(
        self,
        experiment: str,
        params: Mapping[str, object],
        tags: Mapping[str, str] | None = None,
        *,
        data_sha256: str,
    ) -> Iterator[TrainingRun]:
        """A training run of ``experiment`` that records ``params``, the data hash and the library versions.

        The run ends FINISHED when the block completes and FAILED when it raises.

        Args:
            data_sha256: the sha256 (hex) of the training data, logged as a param and a tag.
        """
        if not _SHA256.match(data_sha256):
            raise RegistryError(f"data_sha256 must be 64 lowercase hex digits, not {data_sha256!r}")
        experiment_id = self._experiment_id(experiment)
        with _mlflow_errors(f"start a run of experiment {experiment}"):
            run = self.client.create_run(experiment_id, tags={**(tags or {}), DATA_SHA256: data_sha256})
        training = TrainingRun(self, run.info.run_id, run.info.artifact_uri or "", data_sha256)
        try:
            training.log_params({**params, DATA_SHA256: data_sha256, **library_versions()})
            yield training
        except BaseException:
            self._end(training.run_id, RunStatus.FAILED)
            raise
        self._end(training.run_id, RunStatus.FINISHED)

    def _experiment_id(self, name: str) -> str:
        with _mlflow_errors(f"find or create experiment {name}"):
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                return str(found.experiment_id)
            folder = re.sub(r"[^A-Za-z0-9._-]", "_", name)
            try:
                return self.client.create_experiment(name, artifact_location=f"{self.settings.artifact_root}/{folder}")
            except MlflowException:
                # Another trainer may have created it in between.
                again = self.client.get_experiment_by_name(name)
                if again is None:
                    raise
                return str(again.experiment_id)

    def _end(self, run_id: str, status: int) -> None:
        with _mlflow_errors(f"end run {run_id}"):
            self.client.set_terminated(run_id, RunStatus.to_string(status))

    def create_version(
        self, name: str, source: str, run_id: str, tags: Mapping[str, str], description: str
    ) -> ModelVersionInfo:
        """Register the artifact folder ``source`` of ``run_id`` as a new version of ``name`` (created if new)."""
        with _mlflow_errors(f"register a version of model {name}", name):
            try:
                self.client.create_registered_model(name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            created = self.client.create_model_version(
                name, source, run_id=run_id, tags=dict(tags), description=description
            )
        return self._info(created)

    def promote(self, name: str, version: int) -> ModelVersionInfo:
        """Point the alias at ``version`` of ``name`` after checking its file against its recorded checksum."""
        info = self.version(name, version)
        self.verify(info)
        with _mlflow_errors(f"promote model {name} version {version}", name, version):
            self.client.set_registered_model_alias(name, self.alias, str(version))
        return self.version(name, version)

    def version(self, name: str, version: int) -> ModelVersionInfo:
        with _mlflow_errors(f"read model {name} version {version}", name, version):
            return self._info(self.client.get_model_version(_check_name(name), str(version)))

    def names(self) -> list[str]:
        """Every registered model's name, sorted."""
        found: list[str] = []
        token: str | None = None
        with _mlflow_errors("list the registered models"):
            while True:
                page = self.client.search_registered_models(max_results=_PAGE, page_token=token)
                found += [model.name for model in page]
                token = page.token
                if not token:
                    return sorted(found)

    def versions(self, name: str | None = None) -> list[ModelVersionInfo]:
        """Every version of ``name`` (of every model when None), by name and version."""
        names = [_check_name(name)] if name else self.names()
        return [info for each in names for info in self._versions_of(each)]

    def _versions_of(self, name: str) -> list[ModelVersionInfo]:
        found: list[ModelVersionInfo] = []
        token: str | None = None
        with _mlflow_errors(f"list the versions of model {name}", name):
            # The search leaves each version's aliases empty; the registered model has them.
            promoted = self._aliases(name).get(self.alias)
            while True:
                page = self.client.search_model_versions(f"name = '{name}'", max_results=_PAGE, page_token=token)
                found += [self._info(mv, promoted=int(mv.version) == promoted) for mv in page]
                token = page.token
                if not token:
                    return sorted(found, key=lambda info: info.version)

    def _aliases(self, name: str) -> dict[str, int]:
        """Alias -> version of the registered model ``name``; empty when it is not registered."""
        try:
            model = self.client.get_registered_model(_check_name(name))
        except MlflowException as exc:
            if exc.error_code == _NOT_FOUND:
                return {}
            raise
        return {alias: int(version) for alias, version in (model.aliases or {}).items()}

    def champion(self, name: str) -> ModelVersionInfo | None:
        """The version the registry's alias points at; None when no version of ``name`` is promoted."""
        return self.by_alias(name, self.alias)

    def by_alias(self, name: str, alias: str) -> ModelVersionInfo | None:
        """The version ``alias`` points at; None when ``name`` is not registered or the alias is not set."""
        with _mlflow_errors(f"read alias {alias} of model {name}", name):
            # Read through the registered model: MLflow reports a missing alias as an invalid parameter.
            version = self._aliases(name).get(alias)
            if version is None:
                return None
            return self._info(self.client.get_model_version(name, str(version)), promoted=alias == self.alias)

    def verify(self, info: ModelVersionInfo) -> bytes:
        """The bytes of ``info``'s model file, after checking them against its recorded checksum.

        Raises:
            ModelIntegrityError: the file is missing, or its sha256 differs from the recorded one.
        """
        if info.sha256 is None:
            raise ModelIntegrityError(info.name, info.version, None, None, _fix(info.name))
        data = self._fetch(info)
        if data is None:
            raise ModelIntegrityError(info.name, info.version, info.sha256, None, _fix(info.name))
        actual = sha256_bytes(data)
        if actual != info.sha256:
            raise ModelIntegrityError(info.name, info.version, info.sha256, actual, _fix(info.name))
        return data

    def load(self, info: ModelVersionInfo) -> object:
        """The object registered as ``info``, unpickled only from bytes that match the recorded checksum.

        Raises:
            ModelIntegrityError: the file is missing or does not match; nothing was unpickled.
            RegistryError: MLflow could not be read, or the checked file does not unpickle in this build.
        """
        data = self.verify(info)
        try:
            return joblib.load(io.BytesIO(data))
        except Exception as exc:  # unpickling runs arbitrary constructors: any error means "not loadable here"
            raise RegistryError(
                f"model {info.name} version {info.version} passed its checksum but could not be unpickled "
                f"({type(exc).__name__}: {exc}); was it trained by another version of the code? {_fix(info.name)}",
                info.name,
                info.version,
            ) from exc

    def _fetch(self, info: ModelVersionInfo) -> bytes | None:
        """The model file's bytes; None when the file is not there."""
        uri = f"{info.source.rstrip('/')}/{MODEL_FILE}"
        with tempfile.TemporaryDirectory(prefix="smartfarm-model-") as tmp:
            try:
                with _mlflow_errors(f"fetch the file of model {info.name} version {info.version}", info.name):
                    local = mlflow.artifacts.download_artifacts(
                        artifact_uri=uri, dst_path=tmp, tracking_uri=self.settings.tracking_uri
                    )
                    return Path(local).read_bytes()
            except RegistryError as exc:
                if isinstance(exc.__cause__, FileNotFoundError) or (
                    isinstance(exc.__cause__, MlflowException) and exc.__cause__.error_code == _NOT_FOUND
                ):
                    return None
                raise

    def _info(self, mv: ModelVersion, promoted: bool | None = None) -> ModelVersionInfo:
        tags: dict[str, str] = dict(mv.tags or {})
        metrics = {
            key[len(METRIC_TAG_PREFIX) :]: float(value)
            for key, value in tags.items()
            if key.startswith(METRIC_TAG_PREFIX)
        }
        return ModelVersionInfo(
            name=mv.name,
            version=int(mv.version),
            run_id=mv.run_id or "",
            created=datetime.fromtimestamp((mv.creation_timestamp or 0) / 1000, UTC),
            metrics=metrics,
            sha256=tags.get(SHA256_TAG),
            beats_baseline=tags.get(BEATS_BASELINE_TAG) == "true",
            promoted=self.alias in (mv.aliases or []) if promoted is None else promoted,
            description=mv.description or "",
            source=mv.source or "",
        )


class TrainingRun:
    """One open training run: log metrics, register models. Made by ``Registry.run``."""

    def __init__(self, registry: Registry, run_id: str, artifact_uri: str, data_sha256: str) -> None:
        self.registry = registry
        self.run_id = run_id
        self.artifact_uri = artifact_uri
        self.data_sha256 = data_sha256

    def log_params(self, params: Mapping[str, object]) -> None:
        items = [Param(key, str(value)) for key, value in params.items()]
        with _mlflow_errors(f"log the params of run {self.run_id}"):
            for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
                self.registry.client.log_batch(self.run_id, params=items[start : start + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        items = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        with _mlflow_errors(f"log the metrics of run {self.run_id}"):
            for start in range(0, len(items), 1000):  # MLflow takes at most 1000 metrics per batch
                self.registry.client.log_batch(self.run_id, metrics=items[start : start + 1000])

    def log_table(self, file_name: str, table: pd.DataFrame) -> None:
        """Log ``table`` as a CSV artifact of the run, ``file_name`` at the artifacts' root."""
        with tempfile.TemporaryDirectory(prefix="smartfarm-table-") as tmp:
            path = Path(tmp) / file_name
            table.to_csv(path, float_format="%.4f")
            with _mlflow_errors(f"log the table {file_name} of run {self.run_id}"):
                self.registry.client.log_artifact(self.run_id, str(path))

    def log_text(self, text: str, path: str) -> None:
        """Store ``text`` among the run's artifacts at ``path`` (e.g. a table of held-out figures)."""
        with _mlflow_errors(f"store {path} in run {self.run_id}"):
            self.registry.client.log_text(self.run_id, text, path)

    def register(
        self,
        name: str,
        obj: object,
        metrics: Mapping[str, float],
        beats_baseline: bool,
        description: str = "",
    ) -> ModelVersionInfo:
        """Store ``obj`` as a new version of model ``name``; promote it only when it ``beats_baseline``.

        The object is joblib-dumped, its file's sha256 recorded on the version (with ``metrics`` and
        ``beats_baseline`` as tags), and ``metrics`` are logged on the run as ``<name>.<metric>``.
        """
        digest, folder = self._store(_check_name(name), obj)
        self.log_metrics({f"{name}.{key}": value for key, value in metrics.items()})
        tags = {
            SHA256_TAG: digest,
            BEATS_BASELINE_TAG: "true" if beats_baseline else "false",
            DATA_SHA256: self.data_sha256,
            **{f"{METRIC_TAG_PREFIX}{key}": repr(float(value)) for key, value in metrics.items()},
        }
        source = f"{self.artifact_uri.rstrip('/')}/{folder}"
        info = self.registry.create_version(name, source, self.run_id, tags, description)
        if beats_baseline:
            info = self.registry.promote(name, info.version)
        log.info("registered model %s version %d (sha256 %s, promoted: %s)", name, info.version, digest, info.promoted)
        return info

    def _store(self, name: str, obj: object) -> tuple[str, str]:
        """Dump ``obj`` and log the file among the run's artifacts; its sha256 and the artifact folder.

        The folder is named by the checksum, so two models of one name in one run never overwrite each other.
        """
        with tempfile.TemporaryDirectory(prefix="smartfarm-model-") as tmp:
            path = Path(tmp) / MODEL_FILE
            try:
                joblib.dump(obj, path)
            except Exception as exc:  # pickling may fail on any attribute of any class
                raise RegistryError(f"model {name} could not be pickled: {type(exc).__name__}: {exc}", name) from exc
            digest = sha256_bytes(path.read_bytes())
            folder = f"models/{name}/{digest[:16]}"
            with _mlflow_errors(f"store the file of model {name}", name):
                self.registry.client.log_artifact(self.run_id, str(path), artifact_path=folder)
        return digest, folder


Clock = Callable[[], float]


class Follower:
    """The promoted version of one model, loaded and kept current by ``refresh`` from the caller's loop.

    ``current()`` is None until a promoted version loads; the caller then falls back to the baselines. A version
    that fails to load (integrity, MLflow, unpickling) is remembered and not retried while the alias stays on it;
    the last good model stays in use and ``last_error`` says why.

    Args:
        alias: the alias to follow; the registry's (``champion``) when None.
        poll_s: seconds between checks of the alias; the registry settings' ``poll_s`` when None.
        clock: monotonic seconds; injected by tests.
    """

    def __init__(
        self,
        registry: Registry,
        name: str,
        alias: str | None = None,
        poll_s: float | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self.registry = registry
        self.name = _check_name(name)
        self.alias = alias or registry.alias
        self.poll_s = registry.settings.poll_s if poll_s is None else poll_s
        self.clock = clock
        self._current: LoadedModel | None = None
        self._refused: int | None = None
        self._checked_at: float | None = None
        self.last_error: str | None = None

    def current(self) -> LoadedModel | None:
        return self._current

    def refresh(self, force: bool = False) -> bool:
        """Check the alias when due (or when ``force``) and load a newly promoted version; True when one loaded.

        ``force`` also retries a version that was refused before.
        """
        now = self.clock()
        if not force and self._checked_at is not None and now - self._checked_at < self.poll_s:
            return False
        self._checked_at = now
        try:
            promoted = self.registry.by_alias(self.name, self.alias)
        except RegistryError as exc:
            self._fail(f"could not read the {self.alias} of model {self.name}: {exc}")
            return False
        if promoted is None or not self._is_new(promoted, force):
            return False
        return self._load(promoted)

    def _is_new(self, promoted: ModelVersionInfo, force: bool) -> bool:
        if self._current is not None and self._current.version == promoted.version:
            return False
        if self._refused != promoted.version:
            self._refused = None  # the alias moved: a version refused earlier may be tried again later
        return force or self._refused is None

    def _load(self, promoted: ModelVersionInfo) -> bool:
        try:
            model = self.registry.load(promoted)
        except RegistryError as exc:
            self._refused = promoted.version
            kept = f"keeping version {self._current.version}" if self._current else "keeping the baselines"
            self._fail(f"refused model {self.name} version {promoted.version} ({kept}): {exc}")
            return False
        self._current = LoadedModel(promoted, model)
        self._refused = None
        self.last_error = None
        log.info("loaded model %s version %d (%s)", self.name, promoted.version, self.alias)
        return True

    def _fail(self, reason: str) -> None:
        self.last_error = reason
        log.warning("%s", reason)
