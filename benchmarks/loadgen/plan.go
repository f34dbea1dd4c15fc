package main

// What is published, as pure functions: the schedule (benchmarks.openloop.Plan) and the payloads
// (benchmarks.openloop.Payloads.message), byte for byte as the Python generator makes them.

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// Plan is benchmarks.openloop.Plan: count messages at rate per second from t0 (epoch seconds), message i stamped
// ts0 + (i / rate) * speed, each device's sequence numbers starting at seq_base.
type Plan struct {
	T0      float64 `json:"t0"`
	Rate    float64 `json:"rate"`
	Count   int     `json:"count"`
	Ts0     float64 `json:"ts0"`
	Speed   float64 `json:"speed"`
	SeqBase int64   `json:"seq_base"`
}

// Due is when message i is due (epoch seconds).
func (p Plan) Due(i int) float64 {
	return p.T0 + float64(i)/p.Rate
}

// StampMs is the event time message i carries, in whole milliseconds. The explicit conversions round each step
// as Python does: Go may otherwise fuse a multiply and an add, and a stamp would differ by a millisecond.
func (p Plan) StampMs(i int) int64 {
	offset := float64(float64(i) / p.Rate)
	event := float64(p.Ts0 + float64(offset*p.Speed))
	return int64(math.Floor(float64(event * 1000)))
}

// Templates is what the Python side hands over (benchmarks.openloop.Payloads.to_json): per device slot its id,
// its telemetry topic, and the readings part of its messages, as they are and with a broken probe.
type Templates struct {
	Devices  []string   `json:"devices"`
	Topics   []string   `json:"topics"`
	Readings [][]string `json:"readings"`
	Broken   [][]string `json:"broken"`
}

// readTemplates decodes and checks the templates: one topic and at least one template of each kind per device.
func readTemplates(r io.Reader) (*Templates, error) {
	var t Templates
	if err := json.NewDecoder(r).Decode(&t); err != nil {
		return nil, fmt.Errorf("the templates are not JSON of devices, topics, readings and broken: %w", err)
	}
	n := len(t.Devices)
	if n == 0 || len(t.Topics) != n || len(t.Readings) != n || len(t.Broken) != n {
		return nil, fmt.Errorf("the templates need as many topics, readings and broken as devices (%d), and one at least", n)
	}
	for slot := range t.Devices {
		if len(t.Readings[slot]) == 0 || len(t.Broken[slot]) == 0 {
			return nil, fmt.Errorf("device %s has no readings template", t.Devices[slot])
		}
	}
	return &t, nil
}

// appendMessage appends device slot's message with sequence number seq, stamped ms (epoch milliseconds), its
// broken probe when broken: Payloads.message.
func (t *Templates) appendMessage(b []byte, slot int, seq int64, ms int64, broken bool) []byte {
	bodies := t.Readings[slot]
	if broken {
		bodies = t.Broken[slot]
	}
	b = append(b, `{"schema_version":1,"device":"`...)
	b = append(b, t.Devices[slot]...)
	b = append(b, `","seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"ts":"`...)
	b = appendISO(b, ms)
	b = append(b, `","readings":`...)
	b = append(b, bodies[floorMod(seq, int64(len(bodies)))]...)
	return append(b, '}')
}

// appendISO appends ms (epoch milliseconds) as the ISO 8601 UTC stamp devices send (benchmarks.openloop.iso).
func appendISO(b []byte, ms int64) []byte {
	return time.UnixMilli(ms).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
}

// isBroken is benchmarks.openloop.is_broken: one device in every sends its broken probe in the event hour of
// stampMs, a different one each hour (every 0: never).
func isBroken(slot int, stampMs int64, every int) bool {
	return every > 0 && floorMod(int64(slot)+floorDiv(stampMs, 3_600_000), int64(every)) == 0
}

// floorDiv and floorMod divide as Python's // and % do (towards minus infinity).
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 {
	return a - floorDiv(a, b)*b
}
