package main

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

func TestVarint(t *testing.T) {
	for _, c := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x00}},
		{127, []byte{0x7f}},
		{128, []byte{0x80, 0x01}},
		{16_383, []byte{0xff, 0x7f}},
		{16_384, []byte{0x80, 0x80, 0x01}},
		{maxRemaining, []byte{0xff, 0xff, 0xff, 0x7f}},
	} {
		got := appendVarint(nil, c.n)
		if !bytes.Equal(got, c.want) || varintLen(c.n) != len(c.want) {
			t.Errorf("varint %d: % x (length %d), want % x", c.n, got, varintLen(c.n), c.want)
		}
		back, used, err := varint(got)
		if err != nil || back != c.n || used != len(c.want) {
			t.Errorf("varint % x read back as %d (%d bytes, %v)", got, back, used, err)
		}
	}
}

func TestConnectPacket(t *testing.T) {
	want := []byte{0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30, 0, 0, 1, 'c'}
	if got := connectPacket("c", 30); !bytes.Equal(got, want) {
		t.Errorf("CONNECT % x, want % x", got, want)
	}
}

func TestPublishPacket(t *testing.T) {
	packet, idAt := publishPacket("a/b", []byte("hi"))
	setPacketID(packet, idAt, 0x1234, false)
	want := []byte{0x32, 10, 0, 3, 'a', '/', 'b', 0x12, 0x34, 0, 'h', 'i'}
	if !bytes.Equal(packet, want) {
		t.Errorf("PUBLISH % x, want % x", packet, want)
	}
	setPacketID(packet, idAt, 7, true)
	if packet[0] != 0x3a || packet[idAt+1] != 7 {
		t.Errorf("DUP with id 7: % x", packet)
	}
	setPacketID(packet, idAt, 7, false)
	if packet[0] != 0x32 {
		t.Errorf("DUP cleared: % x", packet)
	}
	long, _ := publishPacket("t", make([]byte, 200))
	if !bytes.Equal(long[:3], []byte{0x32, 0xce, 0x01}) || len(long) != 3+206 {
		t.Errorf("a 206-byte PUBLISH starts % x and is %d long", long[:3], len(long))
	}
}

func TestParsePuback(t *testing.T) {
	for _, c := range []struct {
		body   []byte
		id     uint16
		reason byte
		err    bool
	}{
		{[]byte{0, 5}, 5, 0, false},
		{[]byte{0x12, 0x34, 0x10}, 0x1234, noMatchingSubscribers, false},
		{[]byte{0, 9, 0x10, 0}, 9, noMatchingSubscribers, false},
		{[]byte{0, 9, 0x87, 3, 0x1f, 0, 0}, 9, 0x87, false},
		{[]byte{1}, 0, 0, true},
	} {
		id, reason, err := parsePuback(c.body)
		if (err != nil) != c.err || id != c.id || reason != c.reason {
			t.Errorf("PUBACK % x: id %d reason %d err %v", c.body, id, reason, err)
		}
	}
}

func TestParseConnack(t *testing.T) {
	for _, c := range []struct {
		name    string
		body    []byte
		reason  byte
		receive uint16
		err     bool
	}{
		{"no properties", []byte{0, 0}, 0, 65535, false},
		{"empty properties", []byte{0, 0, 0}, 0, 65535, false},
		{"receive maximum", []byte{0, 0, 3, 0x21, 0, 20}, 0, 20, false},
		{
			"after a topic alias maximum, a client id and a user property",
			[]byte{0, 0, 18, 0x22, 0, 10, 0x12, 0, 2, 'i', 'd', 0x26, 0, 1, 'k', 0, 1, 'v', 0x21, 0x01, 0x00},
			0, 256, false,
		},
		{"refused", []byte{0, 0x87}, 0x87, 65535, false},
		{"unknown property", []byte{0, 0, 2, 0x7f, 0}, 0, 65535, true},
		{"properties past the end", []byte{0, 0, 5, 0x21, 0}, 0, 65535, true},
		{"a string past the end", []byte{0, 0, 3, 0x12, 0, 9}, 0, 65535, true},
		{"too short", []byte{0}, 0, 65535, true},
	} {
		got, err := parseConnack(c.body)
		if (err != nil) != c.err || (!c.err && (got.reason != c.reason || got.receiveMaximum != c.receive)) {
			t.Errorf("%s: %+v, %v", c.name, got, err)
		}
		if err != nil && !errors.Is(err, errMalformed) {
			t.Errorf("%s: %v is not errMalformed", c.name, err)
		}
	}
}

func TestReadPacket(t *testing.T) {
	stream := []byte{0x40, 2, 0, 1, 0x40, 3, 0, 2, 0x10, 0xd0, 0, 0x30, 0x81, 0x01}
	stream = append(stream, make([]byte, 129)...)
	r := bufio.NewReader(bytes.NewReader(stream))
	for _, want := range []struct {
		typ  byte
		size int
	}{{typePuback, 2}, {typePuback, 3}, {typePingresp, 0}, {typePublish, 129}} {
		typ, body, err := readPacket(r, make([]byte, 8))
		if err != nil || typ != want.typ || len(body) != want.size {
			t.Fatalf("packet type %d of %d bytes (%v), want type %d of %d", typ, len(body), err, want.typ, want.size)
		}
	}
	if _, _, err := readPacket(r, nil); err == nil {
		t.Error("read past the end")
	}
	bad := bufio.NewReader(bytes.NewReader([]byte{0x40, 0xff, 0xff, 0xff, 0xff, 0x01}))
	if _, _, err := readPacket(bad, nil); !errors.Is(err, errMalformed) {
		t.Errorf("a five-byte length: %v", err)
	}
}
