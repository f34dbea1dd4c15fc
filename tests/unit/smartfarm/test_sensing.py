"""The one table of how sensor kinds move, and the two judges that read it."""

from __future__ import annotations

from ml import faultdetect
from smartfarm.layout import SensorKind
from smartfarm.sensing import MOTION
from stream import clean


def test_every_kind_has_its_motion() -> None:
    assert set(MOTION) == set(SensorKind)


def test_a_one_way_spike_must_be_at_least_as_large_as_an_out_and_back_one() -> None:
    """The cleaner cannot see the way back, so its step stays clear of what the detector's out-and-back allows."""
    for kind, m in MOTION.items():
        assert m.spike_step is None or m.spike_step >= m.jump, kind


def test_the_cleaner_and_the_fault_detector_read_this_table() -> None:
    assert {k: m.spike_step for k, m in MOTION.items() if m.spike_step is not None} == clean.SPIKE_STEP
    assert {k: m.jump for k, m in MOTION.items()} == faultdetect.JUMP
    assert {k for k, m in MOTION.items() if m.never_rests} == clean.STUCK_KINDS
    assert clean.STUCK_KINDS <= faultdetect.PLATEAU_KINDS, "what the cleaner calls stuck, the detector judges too"
