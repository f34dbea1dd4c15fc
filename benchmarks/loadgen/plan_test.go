package main

import (
	"strings"
	"testing"
)

// The stamps benchmarks.openloop.Plan.stamp_ms gives for the same plans and messages.
func TestStampMs(t *testing.T) {
	for _, c := range []struct {
		plan Plan
		want []int64
	}{
		{
			Plan{T0: 1780000000.25, Rate: 1234.5, Ts0: 1779990000.125, Speed: 600},
			[]int64{1779990000125, 1779990000611, 1779990003527, 1779990485665, 1780050003527},
		},
		{
			Plan{T0: 1780000000.25, Rate: 3000, Ts0: 1780000000.25, Speed: 1},
			[]int64{1780000000250, 1780000000250, 1780000000252, 1780000000583, 1780000041402},
		},
	} {
		for k, i := range []int{0, 1, 7, 999, 123457} {
			if got := c.plan.StampMs(i); got != c.want[k] {
				t.Errorf("%+v: message %d stamped %d, want %d", c.plan, i, got, c.want[k])
			}
		}
	}
}

func TestISO(t *testing.T) {
	for ms, want := range map[int64]string{
		0:             "1970-01-01T00:00:00.000Z",
		1780000000123: "2026-05-28T20:26:40.123Z",
		-1:            "1969-12-31T23:59:59.999Z",
	} {
		if got := string(appendISO(nil, ms)); got != want {
			t.Errorf("%d: %s, want %s", ms, got, want)
		}
	}
}

func TestIsBroken(t *testing.T) {
	hour := int64(3_600_000)
	for _, c := range []struct {
		slot  int
		stamp int64
		every int
		want  bool
	}{
		{0, 0, 0, false},
		{0, 0, 8, true},
		{1, 0, 8, false},
		{7, hour, 8, true},
		{7, hour - 1, 8, false},
		{1, -1, 8, true},  // the hour before the epoch is -1, as Python's // says: (1 - 1) % 8 == 0 ...
		{0, -1, 8, false}, // ... and (0 - 1) % 8 == 7
	} {
		if got := isBroken(c.slot, c.stamp, c.every); got != c.want {
			t.Errorf("isBroken(%d, %d, %d) = %v", c.slot, c.stamp, c.every, got)
		}
	}
}

func TestMessage(t *testing.T) {
	tpl, err := readTemplates(strings.NewReader(`{"devices":["n1","n2"],"topics":["r/n1","r/n2"],` +
		`"readings":[["[1]","[2]"],["[3]"]],"broken":[["[-1]","[-2]"],["[-3]"]]}`))
	if err != nil {
		t.Fatal(err)
	}
	got := string(tpl.appendMessage(nil, 0, 3, 0, false))
	want := `{"schema_version":1,"device":"n1","seq":3,"ts":"1970-01-01T00:00:00.000Z","readings":[2]}`
	if got != want {
		t.Errorf("%s\nwant %s", got, want)
	}
	if got := string(tpl.appendMessage(nil, 1, 10, 1, true)); !strings.HasSuffix(got, `.001Z","readings":[-3]}`) {
		t.Errorf("broken: %s", got)
	}
	for _, bad := range []string{`{"devices":[]}`, `{"devices":["a"],"topics":["t"],"readings":[[]],"broken":[["x"]]}`, `[`} {
		if _, err := readTemplates(strings.NewReader(bad)); err == nil {
			t.Errorf("%s was taken", bad)
		}
	}
}
