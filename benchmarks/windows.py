"""The batching windows against latency and CPU: each choice of the bridge's envelope and linger and the worker's
clean batch and zone gathering, measured twice on the same services: recommendation latency (window close to
MQTT, as the ``advice`` phase times it) and the whole path at one offered rate (publish-to-stored p50 and p99, and
each pipeline process's CPU per device message). A benchmark reports; it does not assert."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.endtoend import Pipeline, advice_latency, run_rate
from benchmarks.harness import Services

ADVICE_RATE = 500.0
"""Messages per second of the advice runs (as the ``advice`` phase offers)."""


@dataclass(frozen=True, slots=True)
class Choice:
    """One set of batching windows (None: the component's default)."""

    envelope_ms: int | None = None
    linger_ms: int | None = None
    batch_within_s: float | None = None
    zone_within_s: float | None = None

    @property
    def name(self) -> str:
        parts = [
            f"envelope {self.envelope_ms} ms" if self.envelope_ms is not None else "",
            f"linger {self.linger_ms} ms" if self.linger_ms is not None else "",
            f"batch {self.batch_within_s} s" if self.batch_within_s is not None else "",
            f"zones {self.zone_within_s} s" if self.zone_within_s is not None else "",
        ]
        return ", ".join(p for p in parts if p) or "defaults"

    def bridge_env(self) -> dict[str, str]:
        env = {}
        if self.envelope_ms is not None:
            env["SMARTFARM_BRIDGE_ENVELOPE_MS"] = str(self.envelope_ms)
        if self.linger_ms is not None:
            env["SMARTFARM_BRIDGE_LINGER_MS"] = str(self.linger_ms)
        return env

    def worker_env(self) -> dict[str, str]:
        env = {}
        if self.batch_within_s is not None:
            env["SMARTFARM_WORKER_BATCH_WITHIN_S"] = str(self.batch_within_s)
        if self.zone_within_s is not None:
            env["SMARTFARM_WORKER_ZONE_WITHIN_S"] = str(self.zone_within_s)
        return env


CHOICES = (
    Choice(),
    Choice(envelope_ms=50, linger_ms=50, batch_within_s=0.25, zone_within_s=2.0),
    Choice(batch_within_s=0.25, zone_within_s=0.1),
    Choice(envelope_ms=20, linger_ms=5, batch_within_s=0.05, zone_within_s=0.05),
)
"""Today's defaults, the windows before the zone stage counted its own (2 s gathering, 0.25 s batches), the
longer clean batch alone, and everything shorter."""


def measure(
    svc: Services, devices: int, rate: float, duration: float, say: Callable[[str], None], choices: tuple[Choice, ...]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, choice in enumerate(choices):
        benv, wenv = choice.bridge_env(), choice.worker_env()
        with Pipeline(
            svc.broker, svc.kafka, svc.influxd, svc.work, f"win{i}a", devices, worker_env=wenv, bridge_env=benv
        ) as pipeline:
            advice = advice_latency(pipeline, ADVICE_RATE)
        with Pipeline(
            svc.broker, svc.kafka, svc.influxd, svc.work, f"win{i}e", devices, worker_env=wenv, bridge_env=benv
        ) as pipeline:
            run = run_rate(pipeline, rate, duration)
        published = max(1, run.outcome.published)
        cpu = {k: round(v / published * 1e6) for k, v in run.cpu_s.items() if not k.startswith("generator")}
        lat = run.outcome.latency
        found: dict[str, Any] = {
            "choice": choice.name,
            "advice_p50_s": advice.p50_s,
            "advice_p99_s": advice.p99_s,
            "rate": rate,
            "p50_s": lat.p50,
            "p99_s": lat.p99,
            "stored": run.outcome.readings_stored,
            "due": run.outcome.readings_due,
            "cpu_us_per_msg": cpu,
            "pipeline_cpu_us_per_msg": sum(cpu.values()),
        }
        out.append(found)
        say(
            f"  {choice.name}: advice p50 {advice.p50_s:.2f} s p99 {advice.p99_s:.2f} s; at {rate:.0f} msg/s "
            f"p50 {lat.p50:.2f} s p99 {lat.p99:.2f} s, {found['stored']}/{found['due']} stored; CPU per message "
            f"(us) {', '.join(f'{k} {v}' for k, v in cpu.items())} = {found['pipeline_cpu_us_per_msg']}"
        )
    return out
