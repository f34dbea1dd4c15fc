// Command loadgen is the benchmark's MQTT load generator: benchmarks/openloop.py's open-loop publisher, written
// in Go so that the harness costs the machine little and the benchmark's figures are the pipeline's.
//
// Message i of the plan is due at t0 + i/rate and stamped ts0 + (i/rate)*speed (epoch milliseconds); device
// i % n sends it with sequence number seq_base + i/n, at QoS 1, its payload built from the templates the Python
// side hands over on standard input (benchmarks.openloop.Payloads.to_json), byte for byte as Payloads.message.
// At most -window messages are in flight; the rest queue without bound (open loop never refuses a due message).
// With -paced the schedule is ignored: the messages are published as fast as the window allows (the MQTT
// ceiling, and the paced load of the bridge stage). It prints one JSON line at the end, the fields of
// benchmarks.openloop.Report.
//
// With -ca-file it speaks MQTT over TLS (crypto/tls, TLS 1.2 at least), verifying the broker's certificate
// against that CA and the host name, as every client of the project does (smartfarm/mqtt.py).
//
// A lost connection is opened again (at once, then at most every -reconnect-every-s) and what was in flight is
// sent again with DUP set, then what queued meanwhile; -resend-unrouted publishes again, -resend-after-s later,
// a message the broker acknowledged with reason 16 "no matching subscribers", as our devices do.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// tick is the shortest wait between two looks at the schedule: a message is published up to this late (its lag
// counts in the latency, from its stamp). A wake costs about 100 us of CPU on our machines, nearly all of it in
// system calls (the timer, the write, the reader's wake for the PUBACKs): at 500 msg/s a 2 ms tick cost 128 us a
// message, 5 ms 52 us; at 2,000 msg/s 1 ms cost 52 us, 2 ms 36 us, 5 ms 23 us.
const tick = 5 * time.Millisecond

// drainFor is how long the generator waits for the last acknowledgements once everything was published.
const drainFor = 120 * time.Second

type options struct {
	host           string
	port           int
	clientID       string
	window         int
	keepalive      time.Duration
	breakEvery     int
	resendUnrouted bool
	resendAfter    time.Duration
	reconnectEvery time.Duration
	paced          bool
	logPath        string
	templates      string
	tls            *tls.Config // nil: plaintext
}

// Report is benchmarks.openloop.Report.
type Report struct {
	Plan         Plan    `json:"plan"`
	Devices      int     `json:"devices"`
	Published    int     `json:"published"`
	Acknowledged int     `json:"acknowledged"`
	MaxLagS      float64 `json:"max_lag_s"`
	Seconds      float64 `json:"seconds"`
	CPUS         float64 `json:"cpu_s"`
	MaxRSSMB     float64 `json:"max_rss_mb"`
	PayloadBytes float64 `json:"payload_bytes"`
	Unrouted     int     `json:"unrouted"`
	Resent       int     `json:"resent"`
}

func main() {
	var o options
	var plan Plan
	flag.StringVar(&o.host, "host", "127.0.0.1", "broker host")
	flag.IntVar(&o.port, "port", 1883, "broker port")
	flag.StringVar(&o.clientID, "client-id", "loadgen", "MQTT client id")
	flag.IntVar(&o.window, "window", 2000, "QoS 1 messages in flight at most")
	keepalive := flag.Float64("keepalive-s", 30, "MQTT keepalive (seconds)")
	flag.IntVar(&o.breakEvery, "break-every", 0, "one device in N reports an out-of-range soil probe, a new one each event hour")
	flag.BoolVar(&o.resendUnrouted, "resend-unrouted", false, `publish again a message acknowledged "no matching subscribers"`)
	resendAfter := flag.Float64("resend-after-s", 1, "how long after its PUBACK an unrouted message is published again")
	reconnectEvery := flag.Float64("reconnect-every-s", 0.5, "how often a lost broker is tried again")
	flag.BoolVar(&o.paced, "paced", false, "ignore the schedule: publish as fast as the window allows")
	flag.StringVar(&o.logPath, "log", "", "append every published payload here, one a line")
	flag.StringVar(&o.templates, "templates", "-", "the payload templates (JSON; - for standard input)")
	caFile := flag.String("ca-file", "", "speak TLS, verifying the broker against this CA (PEM); empty: plaintext")
	flag.Float64Var(&plan.T0, "t0", 0, "wall-clock start (epoch seconds); with -paced, unused")
	flag.Float64Var(&plan.Rate, "rate", 0, "messages per second")
	flag.IntVar(&plan.Count, "count", 0, "messages to publish")
	ts0 := flag.String("ts0", "", "event time of the first message (epoch seconds; default: -t0)")
	flag.Float64Var(&plan.Speed, "speed", 1, "event seconds per wall-clock second")
	flag.Int64Var(&plan.SeqBase, "seq-base", 0, "every device's first sequence number")
	flag.Parse()
	o.keepalive = seconds(*keepalive)
	o.resendAfter = seconds(*resendAfter)
	o.reconnectEvery = seconds(*reconnectEvery)
	plan.Ts0 = plan.T0
	if *ts0 != "" {
		var err error
		if plan.Ts0, err = strconv.ParseFloat(*ts0, 64); err != nil {
			fail("-ts0 %q is not a number", *ts0)
		}
	}
	if plan.Rate <= 0 || plan.Count <= 0 || o.window < 1 {
		fail("-rate, -count and -window must be positive")
	}
	o.window = min(o.window, 65535)
	if *caFile != "" {
		config, err := tlsConfig(*caFile)
		if err != nil {
			fail("-ca-file: %v", err)
		}
		o.tls = config
	}
	report, err := run(o, plan)
	if err != nil {
		fail("%v", err)
	}
	line, _ := json.Marshal(report)
	fmt.Println(string(line))
}

// tlsConfig trusts the CA in caFile alone and offers TLS 1.2 at least; the host name is checked (tls.Dial sets
// ServerName from the address).
func tlsConfig(caFile string) (*tls.Config, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
}

// dial opens a TCP connection to the broker, over TLS when o.tls is set (the handshake done within timeout).
func dial(o options, timeout time.Duration) (net.Conn, error) {
	addr := net.JoinHostPort(o.host, strconv.Itoa(o.port))
	if o.tls == nil {
		return net.DialTimeout("tcp", addr, timeout)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: timeout}, "tcp", addr, o.tls)
	if err != nil {
		return nil, err // not a nil *tls.Conn in a non-nil net.Conn
	}
	return conn, nil
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadgen: "+format+"\n", args...)
	os.Exit(1)
}

func run(o options, plan Plan) (*Report, error) {
	in := io.Reader(os.Stdin)
	if o.templates != "-" {
		f, err := os.Open(o.templates)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	t, err := readTemplates(in)
	if err != nil {
		return nil, err
	}
	if late := epoch(time.Now()) - plan.T0; !o.paced && late > 0 {
		return nil, fmt.Errorf("-t0 is %.2f s in the past: give a start far enough ahead", late)
	}
	var log *bufio.Writer
	if o.logPath != "" {
		f, err := os.OpenFile(o.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		log = bufio.NewWriterSize(f, 256<<10)
	}
	p := newPublisher(o)
	if err := p.connect(time.Now()); err != nil {
		return nil, err
	}
	report, err := p.publish(plan, t, log)
	if log != nil {
		if flushErr := log.Flush(); err == nil && flushErr != nil {
			err = flushErr
		}
	}
	return report, err
}

// epoch is t in seconds since the epoch, as Python's time.time().
func epoch(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// message is one PUBLISH, kept until the broker acknowledged it.
type message struct {
	packet []byte
	idAt   int
	id     uint16
	dup    bool
	acked  bool
}

type ack struct {
	id     uint16
	reason byte
	conn   int
}

type unrouted struct {
	at time.Time
	m  *message
}

// publisher owns the connection and every message's state on one goroutine; a reader goroutine per connection
// hands it the PUBACKs.
type publisher struct {
	o        options
	window   int // o.window, or the broker's Receive Maximum if smaller
	conn     net.Conn
	w        *bufio.Writer
	gen      int // the connection's number: acknowledgements of an earlier one are stale
	pending  fifo[*message]
	inflight fifo[*message] // in the order sent; acknowledged ones leave from the front
	byID     [65536]*message
	nextID   uint16
	unacked  int
	waiting  fifo[unrouted]
	nextTry  time.Time
	written  time.Time // the last write, for the keepalive
	unrouted int
	resent   int

	mu     sync.Mutex
	acks   []ack
	notify chan struct{}
	lost   chan int
}

func newPublisher(o options) *publisher {
	return &publisher{o: o, window: o.window, notify: make(chan struct{}, 1), lost: make(chan int, 8)}
}

// connect opens a connection, says CONNECT and waits for the CONNACK; then a reader takes the acknowledgements.
func (p *publisher) connect(now time.Time) error {
	p.nextTry = now.Add(p.o.reconnectEvery)
	conn, err := dial(p.o, 2*time.Second)
	if err != nil {
		return err
	}
	_ = conn.SetDeadline(now.Add(10 * time.Second))
	w := bufio.NewWriterSize(conn, 64<<10)
	r := bufio.NewReaderSize(conn, 64<<10)
	w.Write(connectPacket(p.o.clientID, uint16(min(p.o.keepalive/time.Second, 65535))))
	if err := w.Flush(); err != nil {
		conn.Close()
		return err
	}
	typ, body, err := readPacket(r, nil)
	if err == nil && typ != typeConnack {
		err = fmt.Errorf("the broker answered CONNECT with packet type %d", typ)
	}
	var ca connack
	if err == nil {
		ca, err = parseConnack(body)
	}
	if err == nil && ca.reason != 0 {
		err = fmt.Errorf("the broker refused the connection: reason code 0x%02x", ca.reason)
	}
	if err != nil {
		conn.Close()
		return err
	}
	_ = conn.SetDeadline(time.Time{})
	p.conn, p.w, p.written = conn, w, now
	p.window = min(p.o.window, int(ca.receiveMaximum))
	p.gen++
	go p.read(r, p.gen)
	return nil
}

// read hands every PUBACK of connection gen to the publisher, a buffer's worth at a time, until the connection ends.
func (p *publisher) read(r *bufio.Reader, gen int) {
	buf := make([]byte, 256)
	var got []ack
	for {
		typ, body, err := readPacket(r, buf)
		if err == nil && typ == typeDisconnect {
			err = errors.New("the broker sent DISCONNECT")
		}
		if err == nil && typ == typePuback {
			var a ack
			a.id, a.reason, err = parsePuback(body)
			a.conn = gen
			got = append(got, a)
		}
		if err != nil {
			p.lost <- gen
			return
		}
		if r.Buffered() == 0 && len(got) > 0 {
			p.mu.Lock()
			p.acks = append(p.acks, got...)
			p.mu.Unlock()
			got = got[:0]
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
	}
}

// publish runs the plan: what is due is queued, the window filled, acknowledgements taken, until every message
// is acknowledged or drainFor has passed since the last was published.
func (p *publisher) publish(plan Plan, t *Templates, log *bufio.Writer) (*Report, error) {
	n := len(t.Devices)
	report := &Report{Plan: plan, Devices: n}
	began := time.Now()
	if !p.o.paced {
		time.Sleep(time.Until(time.UnixMicro(int64(plan.T0 * 1e6))))
	}
	var scratch []byte
	var size int
	var deadline time.Time
	timer := time.NewTimer(time.Hour)
	for sent := 0; ; {
		now := time.Now()
		p.take(now) // first: what it frees of the window is filled in this round
		p.again(now)
		due := plan.Count
		if p.o.paced {
			due = min(plan.Count, sent+max(0, p.window-p.unacked-p.pending.len()))
		} else if sent < plan.Count {
			at := epoch(now)
			due = min(plan.Count, int((at-plan.T0)*plan.Rate)+1)
			if due > sent {
				report.MaxLagS = math.Max(report.MaxLagS, at-plan.Due(sent))
			}
		}
		for ; sent < due; sent++ {
			slot, stamp := sent%n, plan.StampMs(sent)
			seq := plan.SeqBase + int64(sent/n)
			scratch = t.appendMessage(scratch[:0], slot, seq, stamp, isBroken(slot, stamp, p.o.breakEvery))
			size += len(scratch)
			if log != nil {
				log.Write(scratch)
				log.WriteByte('\n')
			}
			packet, idAt := publishPacket(t.Topics[slot], scratch)
			p.pending.push(&message{packet: packet, idAt: idAt})
		}
		if sent == plan.Count && deadline.IsZero() {
			deadline = now.Add(drainFor)
		}
		if p.conn == nil && !now.Before(p.nextTry) {
			_ = p.connect(now) // still away: tried again after reconnectEvery
			p.nextTry = now.Add(p.o.reconnectEvery)
		}
		p.send(now)
		if sent == plan.Count && ((p.outstanding() == 0 && p.waiting.len() == 0) || now.After(deadline)) {
			report.Published = sent
			report.Acknowledged = sent - p.outstanding()
			break
		}
		wake := p.wake(now, deadline)
		if !p.o.paced && sent < plan.Count {
			next := time.UnixMicro(int64(plan.Due(sent) * 1e6))
			if next.Before(now.Add(tick)) {
				next = now.Add(tick)
			}
			if next.Before(wake) {
				wake = next
			}
		}
		// Acknowledgements matter now only to a full window with messages waiting, or at the end; otherwise they
		// are taken at the next look at the schedule.
		var acks chan struct{}
		if p.o.paced || sent == plan.Count || (p.pending.len() > 0 && p.unacked >= p.window) {
			acks = p.notify
		}
		timer.Reset(wake.Sub(now))
		select {
		case <-acks:
		case gen := <-p.lost:
			if gen == p.gen {
				p.drop()
			}
		case <-timer.C:
		}
	}
	if p.conn != nil {
		p.w.Write(disconnectPacket)
		p.w.Flush()
		p.conn.Close()
	}
	if p.o.paced {
		report.Seconds = time.Since(began).Seconds()
	} else {
		report.Seconds = epoch(time.Now()) - plan.T0
	}
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return nil, err
	}
	report.CPUS = float64(usage.Utime.Nano()+usage.Stime.Nano()) / 1e9
	report.MaxRSSMB = peakResidentMB()
	report.PayloadBytes = float64(size) / float64(max(1, report.Published))
	report.Unrouted, report.Resent = p.unrouted, p.resent
	return report, nil
}

// peakResidentMB is the process's peak resident memory (VmHWM). Not getrusage's maxrss: that one keeps the peak
// of the process that forked this one (the benchmark's Python, hundreds of MiB) across the exec.
func peakResidentMB() float64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// outstanding is what was published and not acknowledged yet: in flight or queued (paho's out_messages).
func (p *publisher) outstanding() int {
	return p.unacked + p.pending.len()
}

// wake is when the publisher must look again whatever comes: an unrouted message to publish again, a broker to
// try again, a keepalive to send, the end of the wait for the last acknowledgements.
func (p *publisher) wake(now, deadline time.Time) time.Time {
	wake := now.Add(time.Hour)
	if !deadline.IsZero() {
		wake = deadline
	}
	earlier := func(t time.Time) {
		if t.Before(wake) {
			wake = t
		}
	}
	if p.waiting.len() > 0 {
		earlier(p.waiting.front().at)
	}
	if p.conn == nil {
		earlier(p.nextTry)
	} else if p.o.keepalive > 0 {
		earlier(p.written.Add(p.o.keepalive / 2))
	}
	return wake
}

// take applies the acknowledgements the reader handed over.
func (p *publisher) take(now time.Time) {
	p.mu.Lock()
	acks := p.acks
	p.acks = nil
	p.mu.Unlock()
	for _, a := range acks {
		m := p.byID[a.id]
		if a.conn != p.gen || m == nil {
			continue // of a connection since lost: its messages were queued again
		}
		p.byID[a.id] = nil
		m.acked = true
		p.unacked--
		if a.reason == noMatchingSubscribers {
			p.unrouted++
			if p.o.resendUnrouted {
				p.waiting.push(unrouted{at: now.Add(p.o.resendAfter), m: m})
			}
		}
	}
	for p.inflight.len() > 0 && p.inflight.front().acked {
		p.inflight.pop()
	}
}

// again queues once more the unrouted messages that waited long enough, as new publishes.
func (p *publisher) again(now time.Time) {
	for p.waiting.len() > 0 && !now.Before(p.waiting.front().at) {
		m := p.waiting.pop().m
		m.acked, m.dup = false, false
		p.pending.push(m)
		p.resent++
	}
}

// send fills the window from the queue, in order, and writes it out.
func (p *publisher) send(now time.Time) {
	if p.conn == nil {
		return
	}
	for p.unacked < p.window && p.pending.len() > 0 {
		m := p.pending.pop()
		m.id = p.freeID()
		setPacketID(m.packet, m.idAt, m.id, m.dup)
		p.byID[m.id] = m
		p.inflight.push(m)
		p.unacked++
		p.w.Write(m.packet)
	}
	if p.w.Buffered() == 0 && p.o.keepalive > 0 && now.Sub(p.written) >= p.o.keepalive/2 {
		p.w.Write(pingreqPacket)
	}
	if p.w.Buffered() > 0 {
		p.written = now
		if err := p.w.Flush(); err != nil {
			p.drop()
		}
	}
}

func (p *publisher) freeID() uint16 {
	for {
		p.nextID++
		if p.nextID != 0 && p.byID[p.nextID] == nil {
			return p.nextID
		}
	}
}

// drop closes a lost connection and queues what it had in flight in front of the rest, to be sent again with DUP.
func (p *publisher) drop() {
	p.conn.Close()
	p.conn, p.w = nil, nil
	p.gen++
	var again fifo[*message]
	for p.inflight.len() > 0 {
		m := p.inflight.pop()
		if !m.acked {
			p.byID[m.id] = nil
			m.dup = true
			again.push(m)
		}
	}
	for p.pending.len() > 0 {
		again.push(p.pending.pop())
	}
	p.pending = again
	p.unacked = 0
}

// fifo is a queue on a slice.
type fifo[T any] struct {
	items []T
	head  int
}

func (q *fifo[T]) len() int { return len(q.items) - q.head }
func (q *fifo[T]) front() T { return q.items[q.head] }
func (q *fifo[T]) push(x T) { q.items = append(q.items, x) }

func (q *fifo[T]) pop() T {
	var zero T
	x := q.items[q.head]
	q.items[q.head] = zero
	q.head++
	if q.head >= 1024 && 2*q.head >= len(q.items) {
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return x
}
