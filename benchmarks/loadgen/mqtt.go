package main

// The few MQTT 5 packets a QoS 1 publisher needs, as pure functions over byte slices (OASIS MQTT 5.0, section 3):
// CONNECT, CONNACK, PUBLISH, PUBACK, PINGREQ and DISCONNECT. Nothing here touches a socket.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Packet types (the high nibble of the fixed header's first byte).
const (
	typeConnect    = 1
	typeConnack    = 2
	typePublish    = 3
	typePuback     = 4
	typePingreq    = 12
	typePingresp   = 13
	typeDisconnect = 14
)

// noMatchingSubscribers is the PUBACK reason code 16 (0x10): the broker took the message but nobody was subscribed.
const noMatchingSubscribers = 0x10

// maxRemaining is the largest remaining length a fixed header can carry (four bytes of varint).
const maxRemaining = 268_435_455

// appendVarint appends n as an MQTT variable byte integer.
func appendVarint(b []byte, n int) []byte {
	for {
		digit := byte(n % 128)
		n /= 128
		if n > 0 {
			digit |= 0x80
		}
		b = append(b, digit)
		if n == 0 {
			return b
		}
	}
}

func varintLen(n int) int {
	size := 1
	for n >= 128 {
		n /= 128
		size++
	}
	return size
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// connectPacket is a CONNECT with a clean start and neither properties, will nor credentials (the benchmark's
// brokers take anonymous clients).
func connectPacket(clientID string, keepalive uint16) []byte {
	body := appendString(nil, "MQTT")
	body = append(body, 5, 0x02) // protocol version 5; flags: clean start
	body = binary.BigEndian.AppendUint16(body, keepalive)
	body = appendVarint(body, 0) // no properties
	body = appendString(body, clientID)
	out := append([]byte{typeConnect << 4}, appendVarint(nil, len(body))...)
	return append(out, body...)
}

// publishPacket is a QoS 1 PUBLISH of payload to topic with packet id 0, to be set with setPacketID before it is
// sent; it returns the packet and the offset of its packet id.
func publishPacket(topic string, payload []byte) ([]byte, int) {
	remaining := 2 + len(topic) + 2 + 1 + len(payload) // topic, packet id, properties length 0, payload
	out := make([]byte, 0, 1+varintLen(remaining)+remaining)
	out = append(out, typePublish<<4|0x02) // QoS 1
	out = appendVarint(out, remaining)
	out = appendString(out, topic)
	idAt := len(out)
	out = append(out, 0, 0, 0) // packet id, properties length 0
	return append(out, payload...), idAt
}

// setPacketID writes id into a PUBLISH made by publishPacket and sets or clears its DUP flag.
func setPacketID(packet []byte, idAt int, id uint16, dup bool) {
	binary.BigEndian.PutUint16(packet[idAt:], id)
	if dup {
		packet[0] |= 0x08
	} else {
		packet[0] &^= 0x08
	}
}

var (
	pingreqPacket    = []byte{typePingreq << 4, 0}
	disconnectPacket = []byte{typeDisconnect << 4, 0}
)

var errMalformed = errors.New("malformed MQTT packet")

// readPacket reads one packet: its type and its body (after the fixed header), in buf when it fits.
func readPacket(r *bufio.Reader, buf []byte) (byte, []byte, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	remaining, shift := 0, 0
	for {
		digit, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		remaining |= int(digit&0x7f) << shift
		if digit&0x80 == 0 {
			break
		}
		shift += 7
		if shift > 21 {
			return 0, nil, errMalformed
		}
	}
	if remaining > len(buf) {
		buf = make([]byte, remaining)
	}
	body := buf[:remaining]
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, nil, err
	}
	return first >> 4, body, nil
}

// connack is what a CONNACK says: its reason code and the broker's Receive Maximum (65535 when it gives none).
type connack struct {
	reason         byte
	receiveMaximum uint16
}

// parseConnack reads a CONNACK's body: flags, reason code, then properties, of which only Receive Maximum
// (0x21) matters here; the others are skipped by their type.
func parseConnack(body []byte) (connack, error) {
	out := connack{receiveMaximum: 65535}
	if len(body) < 2 {
		return out, errMalformed
	}
	out.reason = body[1]
	if len(body) == 2 {
		return out, nil
	}
	props, err := properties(body[2:])
	if err != nil {
		return out, err
	}
	for len(props) > 0 {
		id := props[0]
		size, err := propertySize(id, props[1:])
		if err != nil {
			return out, err
		}
		if id == 0x21 && size == 2 {
			out.receiveMaximum = binary.BigEndian.Uint16(props[1:])
		}
		props = props[1+size:]
	}
	return out, nil
}

// properties is the property block that starts b (its varint length, then the properties).
func properties(b []byte) ([]byte, error) {
	length, used, err := varint(b)
	if err != nil || used+length > len(b) {
		return nil, errMalformed
	}
	return b[used : used+length], nil
}

func varint(b []byte) (int, int, error) {
	n, shift := 0, 0
	for i, digit := range b {
		if i == 4 {
			break
		}
		n |= int(digit&0x7f) << shift
		if digit&0x80 == 0 {
			return n, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, errMalformed
}

// propertySize is the size of the value of property id, whose value starts b (MQTT 5.0 section 2.2.2.2).
func propertySize(id byte, b []byte) (int, error) {
	var size int
	switch id {
	case 0x01, 0x17, 0x19, 0x24, 0x25, 0x28, 0x29, 0x2A: // byte
		size = 1
	case 0x13, 0x21, 0x22, 0x23: // two-byte integer
		size = 2
	case 0x02, 0x11, 0x18, 0x27: // four-byte integer
		size = 4
	case 0x0B: // variable byte integer
		_, used, err := varint(b)
		if err != nil {
			return 0, err
		}
		size = used
	case 0x03, 0x08, 0x09, 0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F: // UTF-8 string or binary data
		if len(b) < 2 {
			return 0, errMalformed
		}
		size = 2 + int(binary.BigEndian.Uint16(b))
	case 0x26: // user property: a string pair
		if len(b) < 2 {
			return 0, errMalformed
		}
		first := 2 + int(binary.BigEndian.Uint16(b))
		if len(b) < first+2 {
			return 0, errMalformed
		}
		size = first + 2 + int(binary.BigEndian.Uint16(b[first:]))
	default:
		return 0, fmt.Errorf("%w: unknown property 0x%02x", errMalformed, id)
	}
	if size > len(b) {
		return 0, errMalformed
	}
	return size, nil
}

// parsePuback reads a PUBACK's body: the packet id and the reason code (0, success, when the broker leaves it out).
func parsePuback(body []byte) (uint16, byte, error) {
	if len(body) < 2 {
		return 0, 0, errMalformed
	}
	id := binary.BigEndian.Uint16(body)
	if len(body) == 2 {
		return id, 0, nil
	}
	return id, body[2], nil
}
