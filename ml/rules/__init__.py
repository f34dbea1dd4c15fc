"""The transparent baselines: one pure rule per recommendation kind, from FAO-56 and published thresholds, each
in its module of ``ml.rules`` (``rootzone``, ``frost``, ``heat``, ``disease``, ``harvest``, ``sensorfault``).

Each rule takes a ``ZoneContext`` and returns a list of ``Advice`` (empty when it has nothing to say), with the
numbers it used in ``inputs`` and in its message, so a farmer can check the advice and a later model can be
measured against it. ``RULES`` is the order ``Baselines.score`` runs them in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ml.context import Advice, ZoneContext
from ml.rules.disease import disease_risk
from ml.rules.frost import frost
from ml.rules.harvest import harvest
from ml.rules.heat import heat
from ml.rules.rootzone import irrigation
from ml.rules.sensorfault import sensor_fault

RULES: Sequence[Callable[[ZoneContext], list[Advice]]] = (
    irrigation,
    frost,
    heat,
    disease_risk,
    harvest,
    sensor_fault,
)
"""Every baseline rule, in the order their advice is returned."""
