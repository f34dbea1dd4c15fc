"""Which InfluxDB errors are retried and which lines a refused write holds, without a database: the write is a
function that refuses as InfluxDB 1.x does (it stores the good lines of a request and answers 400 for the rest)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from smartfarm.errors import StorageError
from storage.influx import Refusal, find_refused


@pytest.mark.parametrize(
    ("status", "transient", "refuses_data"),
    [
        (None, True, False),  # unreachable, timed out
        (500, True, False),
        (503, True, False),
        (429, True, False),
        (408, True, False),
        (400, False, True),  # partial write, unparseable
        (413, False, True),  # body too large: halves fit
        (401, False, False),  # credentials: the configuration's, retried loudly
        (403, False, False),
        (404, False, False),  # database not found
    ],
)
def test_an_answer_is_transient_a_refusal_of_the_data_or_of_the_configuration(
    status: int | None, transient: bool, refuses_data: bool
) -> None:
    error = StorageError("answer", status)
    assert (error.transient, error.refuses_data) == (transient, refuses_data)


class Database:
    """Stores what it takes, refuses lines that hold ``bad`` (400, how many dropped, not which)."""

    def __init__(self, fail_first: int = 0) -> None:
        self.stored: list[str] = []
        self.requests = 0
        self.fail_first = fail_first

    def write(self, lines: Sequence[str]) -> None:
        self.requests += 1
        if self.requests <= self.fail_first:
            raise StorageError("InfluxDB is unreachable", None)
        good = [x for x in lines if "bad" not in x]
        self.stored += good
        if len(good) < len(lines):
            raise StorageError(f"partial write: points beyond retention policy dropped={len(lines) - len(good)}", 400)


@pytest.mark.parametrize("bad", [[], [0], [4999], [17, 18, 19, 20], [3, 900, 2500, 4000], list(range(0, 5000, 7))])
def test_bisection_finds_exactly_the_refused_lines_and_every_other_line_is_stored(bad: list[int]) -> None:
    lines = [f"reading{',bad' if i in bad else ''} value={i}" for i in range(5000)]
    db = Database()
    refused = find_refused(lines, db.write)
    assert [r.index for r in refused] == bad
    assert all("dropped=1" in r.detail for r in refused)
    assert set(db.stored) == {x for i, x in enumerate(lines) if i not in bad}
    if len(bad) == 1:
        assert db.requests <= 2 * 13 + 1, "a single bad line costs about two requests per halving"


def test_a_transient_error_propagates_for_the_caller_to_retry_the_whole_write() -> None:
    db = Database(fail_first=1)
    with pytest.raises(StorageError) as raised:
        find_refused(["a value=1", "b value=2"], db.write)
    assert raised.value.transient
    assert find_refused(["a value=1", "bad value=2"], db.write) == [
        Refusal(
            1,
            raised.value.args[0].replace(
                "InfluxDB is unreachable", "partial write: points beyond retention policy dropped=1"
            ),
        )
    ]
