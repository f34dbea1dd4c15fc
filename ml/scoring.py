"""The scoring interface the stream's recommend step calls: a ``Scorer`` turns a ``ZoneContext`` into ``Advice``.

``Baselines`` is the first scorer: the transparent FAO-56 and threshold rules of ``ml.rules``, the bar that
learnt models must clear before they replace it. Scorers are pure: the caller gathers the zone's data, and turns
the advice into ``Recommendation`` records tagged with ``model_tag``.
"""

from __future__ import annotations

from typing import Protocol

from ml.context import Advice, SensorSuspicion, ZoneContext
from ml.rules import RULES
from ml.zonestate import SoilOutlook, ZoneState, baseline_state, physics_outlook

__all__ = ["Advice", "Baselines", "Scorer", "SensorSuspicion", "ZoneContext", "model_tag"]


class Scorer(Protocol):
    """Anything that scores a zone: a name and version for the record, and a pure ``score``."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def score(self, context: ZoneContext) -> list[Advice]:
        """Every piece of advice for the zone at ``context.window_end``; empty when there is none."""
        ...

    def refresh(self) -> None:
        """Pick up newly promoted models (cheap when nothing is due); called once per zone step, off the hot path."""
        ...

    def zone_state(self, context: ZoneContext) -> ZoneState | None:
        """The zone's root zone against the irrigation trigger, by the rule ``score`` advises with; None without
        soil moisture in the hour that just closed."""
        ...

    def soil_outlook(self, context: ZoneContext) -> SoilOutlook | None:
        """The zone's soil moisture ahead, by the forecast ``score`` looks ahead with (or the dry balance's)."""
        ...


class Baselines:
    """The FAO-56 water balance and published thresholds, one rule per recommendation kind (``ml.rules``)."""

    name = "fao56-baseline"
    version = "1"

    def score(self, context: ZoneContext) -> list[Advice]:
        return [advice for rule in RULES for advice in rule(context)]

    def refresh(self) -> None:
        """Rules do not change while running."""

    def zone_state(self, context: ZoneContext) -> ZoneState | None:
        return baseline_state(context, model_tag(self))

    def soil_outlook(self, context: ZoneContext) -> SoilOutlook | None:
        return physics_outlook(context)


def model_tag(scorer: Scorer) -> str:
    """The ``Recommendation.model`` value of a scorer's advice: ``name@version``."""
    return f"{scorer.name}@{scorer.version}"
