"""The scorer that serves the promoted models: irrigation by the advisor with the forecaster's look-ahead, sensor
faults by the rules and the fault detector, and the published risk and harvest rules of ``ml.rules``.

Each model comes from a ``Follower`` of the registry, so a worker picks up a newly promoted version at its next
``refresh`` without a restart, and keeps the last good one when a new one is refused. Until any model is promoted
it scores as ``Baselines`` does (and says so in its name); with only one promoted, the advisor looks ahead with
today's crop water use, or faults come from the stream's flags alone.
``ModelScorer.version`` names the versions in use, so every recommendation says which models made it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol

from ml.advisor import SoilForecast, advise_irrigation
from ml.context import Advice, ZoneContext, fit_message
from ml.faultdetect import Detection
from ml.rules.disease import disease_risk
from ml.rules.frost import frost
from ml.rules.harvest import harvest
from ml.rules.heat import heat
from ml.rules.sensorfault import sensor_fault
from ml.scoring import Baselines, model_tag
from ml.settings import ModelSettings
from ml.zonestate import SoilOutlook, ZoneState, advisor_state, model_outlook, physics_outlook
from smartfarm.records import RecommendationKind, Severity

FORECASTER = "soil-moisture-forecaster"
FAULT_DETECTOR = "sensor-fault-detector"
MODEL_NAMES = (FORECASTER, FAULT_DETECTOR)
"""The registered models, by their registry names."""


class Loaded(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def model(self) -> object: ...


class Source(Protocol):
    """Where a model comes from: ``ml.registry.Follower`` in service, anything alike in tests."""

    name: str

    def current(self) -> Loaded | None: ...

    def refresh(self, force: bool = False) -> bool: ...


class FaultModel(Protocol):
    def detect_context(self, context: ZoneContext) -> list[Detection]: ...


RISK_RULES = (frost, heat, disease_risk, harvest)


class ModelScorer:
    """Scores a zone with the promoted models and the published rules."""

    NAME = "smartfarm-models"

    def __init__(self, sources: Sequence[Source]) -> None:
        self.sources = {s.name: s for s in sources}
        self.baselines = Baselines()

    @property
    def name(self) -> str:
        return self.NAME if self._any_loaded() else self.baselines.name

    def _any_loaded(self) -> bool:
        return any(self._loaded(n) is not None for n in MODEL_NAMES)

    @property
    def version(self) -> str:
        if not self._any_loaded():
            return self.baselines.version
        parts = []
        for name in MODEL_NAMES:
            loaded = self._loaded(name)
            short = name.split("-")[-1]
            parts.append(f"{short}-v{loaded.version}" if loaded is not None else f"{short}-none")
        return "+".join(parts)

    def _loaded(self, name: str) -> Loaded | None:
        source = self.sources.get(name)
        return source.current() if source is not None else None

    @property
    def wants_sensor_hours(self) -> bool:
        """The stream hands each sensor's hour (``ZoneContext.sensors``) only to a scorer with a fault detector."""
        return self._loaded(FAULT_DETECTOR) is not None

    def refresh(self) -> None:
        """Let each source check for a newly promoted version (cheap when its poll is not due)."""
        for source in self.sources.values():
            source.refresh()

    def score(self, context: ZoneContext) -> list[Advice]:
        forecaster = self._loaded(FORECASTER)
        detector = self._loaded(FAULT_DETECTOR)
        if forecaster is None and detector is None:
            return self.baselines.score(context)  # nothing promoted yet: the transparent rules, as before
        forecast: SoilForecast | None = forecaster.model if forecaster is not None else None  # type: ignore[assignment]
        out = advise_irrigation(context, forecast)
        for rule in RISK_RULES:
            out += rule(context)
        faults = sensor_fault(context)
        if detector is not None:
            flagged = {(a.device, a.sensor) for a in faults}
            model: FaultModel = detector.model  # type: ignore[assignment]
            found = [fault_advice(d, context) for d in model.detect_context(context)]
            faults += [a for a in found if (a.device, a.sensor) not in flagged]
        return out + faults

    def zone_state(self, context: ZoneContext) -> ZoneState | None:
        if not self._any_loaded():
            return self.baselines.zone_state(context)
        return advisor_state(context, model_tag(self))

    def soil_outlook(self, context: ZoneContext) -> SoilOutlook | None:
        """The promoted forecaster's prediction, or the dry balance's while none is promoted."""
        forecaster = self._loaded(FORECASTER)
        if forecaster is None:
            return physics_outlook(context)
        model: SoilForecast = forecaster.model  # type: ignore[assignment]
        return model_outlook(context, model, f"{FORECASTER}@v{forecaster.version}")


def fault_advice(detection: Detection, context: ZoneContext) -> Advice:
    """A detector's verdict as sensor-fault advice: the device and sensor, its words, its score as confidence."""
    what = "device" if detection.sensor is None else "sensor"
    return Advice(
        kind=RecommendationKind.SENSOR_FAULT,
        severity=Severity.WARNING if detection.score >= 0.8 else Severity.ADVISORY,
        message=fit_message(detection.message),
        confidence=max(0.5, min(0.95, detection.score)),
        inputs={"score": detection.score, f"detected_{detection.kind}": 1.0, f"{what}_checked": 1.0},
        valid_for=timedelta(hours=24),
        device=detection.device,
        sensor=detection.sensor,
    )


def serving_scorer(settings: ModelSettings) -> ModelScorer:
    """The scorer a worker serves with: a ``Follower`` of each model's promoted version in the registry of
    ``settings``, loaded now (the baselines until one is promoted), then checked every ``poll_s``."""
    from ml.registry import Follower, Registry  # MLflow takes seconds to import; only a serving worker pays

    registry = Registry(settings)
    followers = [Follower(registry, name) for name in MODEL_NAMES]
    for follower in followers:
        follower.refresh(force=True)
    return ModelScorer(followers)


class IrrigationAdvisor:
    """A scorer of irrigation alone, by the advisor (with a forecaster or without): the closed-loop season's."""

    name = "fao56-advisor"

    def __init__(self, forecaster: SoilForecast | None) -> None:
        self.forecaster = forecaster

    @property
    def version(self) -> str:
        return "forecast" if self.forecaster is not None else "crop-water-use"

    def score(self, context: ZoneContext) -> list[Advice]:
        return advise_irrigation(context, self.forecaster)

    def zone_state(self, context: ZoneContext) -> ZoneState | None:
        return advisor_state(context, model_tag(self))

    def soil_outlook(self, context: ZoneContext) -> SoilOutlook | None:
        if self.forecaster is None:
            return physics_outlook(context)
        return model_outlook(context, self.forecaster, model_tag(self))

    def refresh(self) -> None:
        """Its forecaster is fixed for the run."""
