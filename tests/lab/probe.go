package lab

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ProbePort is the UDP port responders listen on.
const ProbePort = 7

// StartResponder answers UDP probes on every address of the host, the VIP
// included while the host holds it: it echoes the probe followed by the host's
// name. It stops when the lab closes.
func (h *Host) StartResponder() error {
	var conn net.PacketConn
	err := h.Do(func() (err error) {
		conn, err = net.ListenPacket("udp", fmt.Sprintf(":%d", ProbePort))
		return err
	})
	if err != nil {
		return err
	}
	h.lab.onClose(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			conn.WriteTo(append(buf[:n:n], " "+h.Name...), from)
		}
	}()
	return nil
}

// Answer is a probe's fate: who answered, or nobody.
type Answer struct {
	Sent time.Time
	From string // host name of the first answer; "" when none came
	Also string // a second host that answered the same probe, if any
}

// Prober sends a numbered UDP probe to a target every interval and records who
// answers, like a client of the service behind a VIP. Sending and receiving run
// apart, so a slow answer never delays the next probe.
type Prober struct {
	mu      sync.Mutex
	answers []Answer
	stop    chan struct{}
	done    chan struct{}
}

// StartProber probes target from the host until Stop, at most limit probes.
func (h *Host) StartProber(target netip.Addr, interval time.Duration, limit int) (*Prober, error) {
	var conn net.PacketConn
	err := h.Do(func() (err error) {
		conn, err = net.ListenPacket("udp", ":0")
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &Prober{stop: make(chan struct{}), done: make(chan struct{})}
	h.lab.onClose(p.Stop)
	dst := net.UDPAddrFromAddrPort(netip.AddrPortFrom(target, ProbePort))
	go func() { // receiver: ends when the sender closes the socket
		buf := make([]byte, 128)
		for {
			n, _, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			seq, from, ok := strings.Cut(string(buf[:n]), " ")
			i, err := strconv.Atoi(seq)
			if !ok || err != nil {
				continue
			}
			p.mu.Lock()
			if i >= 0 && i < len(p.answers) {
				switch a := &p.answers[i]; {
				case a.From == "":
					a.From = from
				case a.From != from:
					a.Also = from
				}
			}
			p.mu.Unlock()
		}
	}()
	go func() { // sender
		defer close(p.done)
		defer conn.Close()
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; i < limit; i++ {
			p.mu.Lock()
			p.answers = append(p.answers, Answer{Sent: time.Now()})
			p.mu.Unlock()
			conn.WriteTo([]byte(strconv.Itoa(i)), dst)
			select {
			case <-p.stop:
				time.Sleep(interval) // let the last answers in
				return
			case <-t.C:
			}
		}
	}()
	return p, nil
}

// Stop ends probing and waits for the last probe.
func (p *Prober) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// Answers returns the probes so far.
func (p *Prober) Answers() []Answer {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Answer(nil), p.answers...)
}

// Last returns the host that answered the most recent answered probe.
func (p *Prober) Last() string {
	as := p.Answers()
	for i := len(as) - 1; i >= 0; i-- {
		if as[i].From != "" {
			return as[i].From
		}
	}
	return ""
}

// ErrNoAnswer is returned by Outage when no probe after since was answered.
var ErrNoAnswer = errors.New("no probe was answered")

// Outage returns the longest time without answers among probes sent after since:
// from the last answered probe before the gap to the first answered after it.
func (p *Prober) Outage(since time.Time) (time.Duration, error) {
	var (
		longest  time.Duration
		lastOK   time.Time
		answered bool
	)
	for _, a := range p.Answers() {
		if a.From == "" {
			continue
		}
		if a.Sent.After(since) {
			if !lastOK.IsZero() {
				longest = max(longest, a.Sent.Sub(lastOK))
			}
			answered = true
		}
		lastOK = a.Sent
	}
	if !answered {
		return 0, ErrNoAnswer
	}
	return longest, nil
}
