"""The profile phase's reading of py-spy's speedscope files: own and total time per function, the table, the
flame graph."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from benchmarks.profiling import Function, Profile, flamegraph, table

FRAMES = [
    {"name": "_run", "file": "stream/bridge.py", "line": 240, "col": None},  # 0
    {"name": "_turn", "file": "stream/bridge.py", "line": 290, "col": None},  # 1
    {"name": "wait_and_read", "file": "stream/mqttio.py", "line": 80, "col": None},  # 2
    {"name": "route", "file": "stream/gate.py", "line": 130, "col": None},  # 3
    {"name": "walk", "file": "x.py", "line": 1, "col": None},  # 4: recursive
    {"name": "serve", "file": "http.py", "line": 9, "col": None},  # 5
]


def speedscope(threads: dict[str, list[tuple[list[int], float]]]) -> dict[str, Any]:
    """A document shaped as py-spy 0.4 writes it: one sampled profile per thread, frames root first."""
    return {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "shared": {"frames": FRAMES},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "seconds",
                "startValue": 0.0,
                "endValue": sum(w for _, w in samples),
                "samples": [s for s, _ in samples],
                "weights": [w for _, w in samples],
            }
            for name, samples in threads.items()
        ],
        "name": "py-spy profile",
        "activeProfileIndex": 0,
        "exporter": "py-spy@0.4.3",
    }


DOC = speedscope(
    {
        'Thread 1 "bridge-ingress"': [
            ([0, 1, 2], 0.01),
            ([0, 1, 2], 0.01),
            ([0, 1, 3], 0.01),
            ([0, 1], 0.01),
            ([0, 4, 4, 4], 0.01),
        ],
        'Thread 2 "metrics"': [([5], 0.01), ([5], 0.01), ([5], 0.01)],
    }
)


def fn(i: int) -> Function:
    f = FRAMES[i]
    return Function(str(f["name"]), str(f["file"]), int(f["line"] or 0))


def test_threads_and_seconds() -> None:
    profile = Profile.from_speedscope(DOC)
    assert profile.seconds == pytest.approx(0.08)
    assert profile.thread_seconds() == pytest.approx({'Thread 1 "bridge-ingress"': 0.05, 'Thread 2 "metrics"': 0.03})
    assert list(profile.thread_seconds()) == ['Thread 1 "bridge-ingress"', 'Thread 2 "metrics"']  # busiest first


@pytest.mark.parametrize(
    ("frame", "own", "total"),
    [
        (5, 3 / 8, 3 / 8),  # the leaf of every sample of its thread
        (2, 2 / 8, 2 / 8),
        (4, 1 / 8, 1 / 8),  # three deep in one sample: counted once in its total
        (1, 1 / 8, 4 / 8),  # a leaf once, under four samples
        (3, 1 / 8, 1 / 8),
    ],
)
def test_own_and_total_shares(frame: int, own: float, total: float) -> None:
    top = {t.function: t for t in Profile.from_speedscope(DOC).top(10)}
    assert top[fn(frame)].own == pytest.approx(own)
    assert top[fn(frame)].total == pytest.approx(total)


def test_top_is_ordered_by_own_time_and_cut_at_n() -> None:
    top = Profile.from_speedscope(DOC).top(2)
    assert [t.function for t in top] == [fn(5), fn(2)]
    assert fn(0) not in {t.function for t in Profile.from_speedscope(DOC).top(10)}  # never on top of a stack


def test_table_gives_each_function_its_own_time_a_message() -> None:
    text = table(Profile.from_speedscope(DOC), 2, messages=1000)
    lines = text.splitlines()
    assert lines[0].split() == ["own", "total", "us/msg", "function"]
    assert lines[1].split()[:3] == ["37.5%", "37.5%", "30.0"]  # 0.03 s over 1,000 messages
    assert lines[1].endswith("serve (http.py:9)")
    assert lines[2].split()[:3] == ["25.0%", "25.0%", "20.0"]
    assert table(Profile.from_speedscope(DOC), 1).splitlines()[1].split()[2] == "-"


def test_flamegraph_boxes_are_as_wide_as_their_share() -> None:
    svg = flamegraph(Profile.from_speedscope(DOC), "bridge1 at 2000 msg/s")
    root = ET.fromstring(svg)  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    boxes = {}
    for g in root.iter(f"{ns}g"):
        title = g.find(f"{ns}title")
        rect = g.find(f"{ns}rect")
        assert title is not None and rect is not None and title.text is not None
        boxes[title.text.split(": ")[0]] = float(rect.get("width", "0"))
    width = float(root.get("width", "0"))
    assert boxes['Thread 1 "bridge-ingress"'] == pytest.approx(width * 5 / 8, abs=0.1)
    assert boxes[str(fn(1))] == pytest.approx(width * 4 / 8, abs=0.1)
    assert boxes[str(fn(5))] == pytest.approx(width * 3 / 8, abs=0.1)
    assert "bridge1 at 2000 msg/s" in svg


def test_flamegraph_escapes_names() -> None:
    doc = speedscope({"<thread & co>": [([0], 0.01)]})
    doc["shared"]["frames"] = [{"name": "<lambda>", "file": "a&b.py", "line": 3}]
    svg = flamegraph(Profile.from_speedscope(doc), "t")
    ET.fromstring(svg)
    assert "&lt;lambda&gt;" in svg and "a&amp;b.py" in svg
    assert not re.search(r"<lambda>", svg)
