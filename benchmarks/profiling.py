"""py-spy profiles of pipeline processes under load: recorded while a rate is offered, read into own time per
function, drawn as a flame graph.

``Sampling`` is a ``during`` hook for ``benchmarks.endtoend.run_rate``: at the first due message it starts one
``py-spy record`` per process (speedscope JSON, Python frames only, idle threads left out, samples aggregated by
function), and stops them once the offered load has run its seconds. One sampler per process: py-spy pauses the
process it reads at every sample, and a second sampler for another output format would pause it twice as often.
The flame graph (SVG) and the table of own time are made from the speedscope file (``Profile``, pure).

Only samples of a thread holding the GIL are kept (``--gil``): a sample is then Python code running, so a
function's sampled seconds over the messages is its CPU a message. py-spy's idle test alone (the thread's state)
counts a thread just woken from a short wait as busy: at 2,000 msg/s, 70% of the bridge's ingress samples fell
in a 5 ms ``time.sleep``, 5.3 s in a 30 s run in which the whole process used 3.5 s of CPU. What the GIL samples
leave out is native work outside the GIL (system calls, librdkafka's own threads): the process's CPU less the
sampled seconds.
"""

from __future__ import annotations

import hashlib
import html
import json
import shutil
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from cli.services.base import cpu_seconds

HZ = 100
"""Samples per second and process: py-spy's default, about 1% of a process's time paused."""
INSTALL = "bash scripts/bootstrap.sh (py-spy is in the project's test extra)"


class Function(NamedTuple):
    """A Python function as py-spy names it (``--function``: ``line`` is its first line)."""

    name: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.name} ({self.file}:{self.line})"


class Timed(NamedTuple):
    """One function's share of a process's samples: on top of the stack (own) and anywhere in it (total)."""

    function: Function
    own: float
    total: float


@dataclass
class Profile:
    """A py-spy speedscope file: every thread's samples (frames root first) with their weights (seconds)."""

    frames: list[Function]
    threads: dict[str, list[tuple[tuple[int, ...], float]]] = field(default_factory=dict)

    @classmethod
    def from_speedscope(cls, doc: Mapping[str, Any]) -> Profile:
        frames = [Function(f["name"], f.get("file") or "?", int(f.get("line") or 0)) for f in doc["shared"]["frames"]]
        profile = cls(frames)
        for thread in doc["profiles"]:
            samples = profile.threads.setdefault(thread["name"], [])
            samples += [(tuple(s), float(w)) for s, w in zip(thread["samples"], thread["weights"], strict=True)]
        return profile

    @classmethod
    def read(cls, path: Path) -> Profile:
        return cls.from_speedscope(json.loads(path.read_text()))

    def _samples(self) -> Iterable[tuple[tuple[int, ...], float]]:
        for samples in self.threads.values():
            yield from samples

    @property
    def seconds(self) -> float:
        """The sampled time of every thread together."""
        return sum(w for _, w in self._samples())

    def thread_seconds(self) -> dict[str, float]:
        """Each thread's sampled time, busiest first."""
        out = {name: sum(w for _, w in samples) for name, samples in self.threads.items()}
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def top(self, n: int) -> list[Timed]:
        """The ``n`` functions with the most own time, each with its own and total share of all samples (a
        function recursing is counted once per sample in its total)."""
        own: defaultdict[int, float] = defaultdict(float)
        total: defaultdict[int, float] = defaultdict(float)
        for stack, weight in self._samples():
            if stack:
                own[stack[-1]] += weight
            for frame in set(stack):
                total[frame] += weight
        whole = self.seconds or 1.0
        ranked = sorted(own.items(), key=lambda fw: -fw[1])[:n]
        return [Timed(self.frames[f], w / whole, total[f] / whole) for f, w in ranked]

    def collapsed(self) -> dict[tuple[str, ...], float]:
        """Stacks as flame graphs draw them (thread, then frames root first), with their weights summed."""
        out: defaultdict[tuple[str, ...], float] = defaultdict(float)
        for thread, samples in self.threads.items():
            for stack, weight in samples:
                out[(thread, *(str(self.frames[f]) for f in stack))] += weight
        return dict(out)


def table(profile: Profile, n: int, messages: int | None = None) -> str:
    """The top ``n`` functions by own time as text: their shares of the samples, and with the messages offered
    meanwhile, their own sampled time a message in microseconds."""
    rows = [("own", "total", "us/msg", "function")]
    whole = profile.seconds
    for t in profile.top(n):
        per = f"{t.own * whole / messages * 1e6:.1f}" if messages else "-"
        rows.append((f"{t.own:.1%}", f"{t.total:.1%}", per, str(t.function)))
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join([*(c.rjust(w) for c, w in zip(r[:3], width, strict=True)), r[3]]) for r in rows)


# -- the flame graph ---------------------------------------------------------------------------------------------

WIDTH = 1200
ROW = 16
MIN_SHARE = 0.0005
"""Frames narrower than this share of the whole are left out of the drawing (they stay in the speedscope file)."""


@dataclass
class _Node:
    weight: float = 0.0
    children: dict[str, _Node] = field(default_factory=dict)


def _colour(name: str) -> str:
    """A warm colour, stable per function name (as flame graphs colour Python frames)."""
    h = hashlib.blake2b(name.encode(), digest_size=2).digest()
    return f"rgb({205 + h[0] % 50},{80 + h[1] % 130},{50 + (h[0] ^ h[1]) % 40})"


def flamegraph(profile: Profile, title: str) -> str:
    """A flame graph of ``profile`` as a standalone SVG: one box per frame, as wide as its share of the samples,
    callers below callees; each box's tooltip names the function, its samples in seconds and its share."""
    root = _Node()
    for stack, weight in profile.collapsed().items():
        node = root
        node.weight += weight
        for name in stack:
            node = node.children.setdefault(name, _Node())
            node.weight += weight
    whole = root.weight or 1.0
    boxes: list[tuple[int, float, float, str, float]] = []  # depth, x share, width share, name, seconds

    def walk(node: _Node, depth: int, x: float) -> None:
        for name, child in sorted(node.children.items()):
            share = child.weight / whole
            if share >= MIN_SHARE:
                boxes.append((depth, x, share, name, child.weight))
                walk(child, depth + 1, x)
            x += share

    walk(root, 0, 0.0)
    depth = 1 + max((b[0] for b in boxes), default=0)
    height = (depth + 2) * ROW + 10
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="monospace" '
        f'font-size="11">',
        f'<rect width="{WIDTH}" height="{height}" fill="#fdf6e3"/>',
        f'<text x="{WIDTH / 2}" y="14" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
    ]
    for level, x, share, name, seconds in boxes:
        px, pw = x * WIDTH, share * WIDTH
        y = height - (level + 1) * ROW - 4
        label = name if len(name) * 7 <= pw - 4 else name[: max(0, int((pw - 4) / 7) - 2)] + ".."
        tip = html.escape(f"{name}: {seconds:.2f} s, {share:.2%}")
        out.append(
            f'<g><title>{tip}</title><rect x="{px:.1f}" y="{y}" width="{pw:.1f}" height="{ROW - 1}" '
            f'fill="{_colour(name.split(" (")[0])}"/>'
            + (f'<text x="{px + 2:.1f}" y="{y + 11}">{html.escape(label)}</text>' if len(label) > 2 else "")
            + "</g>"
        )
    out.append("</svg>")
    return "\n".join(out)


# -- recording ---------------------------------------------------------------------------------------------------


def py_spy() -> str:
    """The py-spy program of this environment; FileNotFoundError naming the install command when it is missing."""
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if found is None:
        raise FileNotFoundError(f"py-spy is not installed: {INSTALL}")
    return found


class Sampling:
    """A ``run_rate`` ``during`` hook: ``py-spy record`` of each of ``pids`` from the first due message for
    ``seconds``, each into ``folder/<name>.speedscope.json``.

    Call ``stop()`` after the run in any case (it stops samplers still running, as when the run ended early)."""

    def __init__(self, pids: Mapping[str, int], folder: Path, seconds: float, hz: int = HZ, gil: bool = True) -> None:
        self.pids = dict(pids)
        self.folder = folder
        self.seconds = seconds
        self.hz = hz
        self.gil = gil
        self.program = py_spy()
        self.spies: dict[str, subprocess.Popen[bytes]] = {}
        self.cpu_s: dict[str, float] = {}
        self.errors: dict[str, str] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.speedscope.json"

    def __call__(self, elapsed: float) -> None:
        if not self.spies and elapsed >= 0:
            for name, pid in self.pids.items():
                cmd = [self.program, "record", "--pid", str(pid), "--rate", str(self.hz), "--function"]
                cmd += ["--gil"] if self.gil else []
                cmd += ["--format", "speedscope", "--output", str(self.path(name))]
                self.spies[name] = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elif self.spies and elapsed >= self.seconds:
            self.stop()

    def stop(self) -> None:
        """Stop every sampler still running (py-spy writes its file on SIGINT) and keep what each used of the CPU;
        once is enough, more is harmless (the run's clock may have stopped them before the phase's ``finally``)."""
        running = {name: spy for name, spy in self.spies.items() if name not in self.cpu_s}
        for name, spy in running.items():
            self.cpu_s[name] = cpu_seconds(spy.pid)
            if spy.poll() is None:
                spy.send_signal(signal.SIGINT)
        for name, spy in running.items():
            try:
                _, err = spy.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                spy.kill()
                _, err = spy.communicate()
            if not self.path(name).exists():
                self.errors[name] = err.decode(errors="replace").strip()[-500:] or f"py-spy exited {spy.returncode}"
