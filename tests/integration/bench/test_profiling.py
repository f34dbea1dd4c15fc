"""The profile phase's sampler against a real Python process: py-spy attached by pid, stopped by the run's clock,
its speedscope file read back, and the busy function found on top."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from benchmarks.profiling import Profile, Sampling, flamegraph

BUSY = textwrap.dedent(
    """
    import threading, time

    def churn():
        total = 0
        for i in range(20_000):
            total += i * i
        return total

    def idle():
        while True:
            time.sleep(0.05)

    threading.Thread(target=idle, name="idler", daemon=True).start()
    print("up", flush=True)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        churn()
    """
)


def test_a_busy_process_is_sampled_and_its_hot_function_comes_first(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", BUSY], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        sampling = Sampling({"busy": proc.pid}, tmp_path / "py-spy", seconds=1.5)
        began = time.monotonic()
        sampling(-0.1)  # before the first due message: nothing starts
        assert not sampling.spies
        while (elapsed := time.monotonic() - began) < 10 and "busy" not in sampling.cpu_s:
            sampling(elapsed)  # starts at 0, stops once 1.5 s have passed
            time.sleep(0.1)
        sampling.stop()  # again, as the phase's finally does: harmless
    finally:
        proc.kill()
        proc.wait()
    assert sampling.errors == {}
    assert sampling.cpu_s["busy"] > 0
    profile = Profile.read(sampling.path("busy"))
    assert 0.5 < profile.seconds < 3, "about 1.5 s of a busy thread, at 100 Hz"
    assert not [name for name in profile.threads if "idler" in name], "an idle thread holds no GIL samples"
    top = profile.top(3)
    assert top[0].function.name == "churn" and top[0].own > 0.5
    assert "churn" in flamegraph(profile, "busy")
