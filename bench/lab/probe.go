package lab

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/mdlayher/packet"
	"golang.org/x/sys/unix"
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
	go readAnswers(conn, func(i int, from string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if i >= 0 && i < len(p.answers) {
			switch a := &p.answers[i]; {
			case a.From == "":
				a.From = from
			case a.From != from:
				a.Also = from
			}
		}
	})
	go func() {
		defer close(p.done)
		defer conn.Close()
		every(interval, limit, p.stop, func(i int) {
			p.mu.Lock()
			p.answers = append(p.answers, Answer{Sent: time.Now()})
			p.mu.Unlock()
			conn.WriteTo([]byte(strconv.Itoa(i)), dst)
		})
	}()
	return p, nil
}

// readAnswers hands each answer, "seq host", to record until conn is closed.
func readAnswers(conn net.PacketConn, record func(seq int, from string)) {
	buf := make([]byte, 128)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		seq, from, ok := strings.Cut(string(buf[:n]), " ")
		if i, err := strconv.Atoi(seq); ok && err == nil {
			record(i, from)
		}
	}
}

// ProbeRTPriority is the SCHED_FIFO priority of the thread that sends a
// prober's probes: above the daemons under test (xvrrp's SCHED_RR 10), whose
// start-up at real-time priority — loading and verifying BPF programs — and
// the other work of a shared machine otherwise kept the prober off the CPU for
// tens of milliseconds, during which nothing was probed.
const ProbeRTPriority = 20

// every runs probe(i) every interval, at most limit times, until stop; then it
// waits one more interval to let the last answers in. It runs on a thread of
// its own at real-time priority (best effort: without the privilege, at the
// normal one) and sleeps in the kernel until each probe's absolute time, so
// the Go scheduler's timers, which run on ordinary threads, cannot hold it
// back; a probe whose time passed while it could not run is sent at once, and
// the schedule goes on from there.
func every(interval time.Duration, limit int, stop <-chan struct{}, probe func(i int)) {
	runtime.LockOSThread()
	// The thread stays locked when the goroutine ends, so the runtime
	// discards it rather than reuse a real-time thread.
	setFIFO(ProbeRTPriority)
	next := monotonic()
	for i := 0; i < limit; i++ {
		probe(i)
		select {
		case <-stop:
			time.Sleep(interval)
			return
		default:
		}
		next += interval
		if now := monotonic(); next < now {
			next = now
		}
		sleepUntil(next)
	}
}

func setFIFO(priority int) {
	param := struct{ priority int32 }{int32(priority)}
	unix.RawSyscall(unix.SYS_SCHED_SETSCHEDULER, 0, 1 /* SCHED_FIFO */, uintptr(unsafe.Pointer(&param)))
}

func monotonic() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return time.Duration(ts.Nano())
}

func sleepUntil(t time.Duration) {
	ts := unix.NsecToTimespec(int64(t))
	for unix.ClockNanosleep(unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, &ts, nil) == unix.EINTR {
	}
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

// DirectedProber sends, every interval, one UDP probe for a target address to
// each of several hosts' MACs, bypassing the client's ARP cache, and records
// which hosts answered each round: two answers in a round mean two hosts serve
// the address at once.
type DirectedProber struct {
	mu     sync.Mutex
	rounds []DirectedRound
	stop   chan struct{}
	done   chan struct{}
}

// DirectedRound is one round of directed probes.
type DirectedRound struct {
	Sent time.Time
	From []string // hosts that answered, in order of arrival
}

// StartDirectedProber probes target at each host's MAC from h until Stop, at
// most limit rounds.
func (h *Host) StartDirectedProber(target netip.Addr, hosts []*Host, interval time.Duration, limit int) (*DirectedProber, error) {
	var (
		conn *net.UDPConn
		raw  *packet.Conn
	)
	err := h.Do(func() error {
		c, err := net.ListenPacket("udp4", ":0")
		if err != nil {
			return err
		}
		conn = c.(*net.UDPConn)
		ifi, err := net.InterfaceByName(h.Iface)
		if err != nil {
			conn.Close()
			return err
		}
		// Protocol 0: this socket only sends.
		if raw, err = packet.Listen(ifi, packet.Raw, 0, nil); err != nil {
			conn.Close()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	p := &DirectedProber{stop: make(chan struct{}), done: make(chan struct{})}
	h.lab.onClose(p.Stop)
	port := uint16(conn.LocalAddr().(*net.UDPAddr).Port)
	go readAnswers(conn, func(i int, from string) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if i >= 0 && i < len(p.rounds) {
			p.rounds[i].From = append(p.rounds[i].From, from)
		}
	})
	go func() {
		defer close(p.done)
		defer conn.Close()
		defer raw.Close()
		every(interval, limit, p.stop, func(i int) {
			p.mu.Lock()
			p.rounds = append(p.rounds, DirectedRound{Sent: time.Now()})
			p.mu.Unlock()
			for _, to := range hosts {
				frame := udpFrame(h.MAC, to.MAC, h.IPv4.Addr(), target, port, ProbePort, []byte(strconv.Itoa(i)))
				raw.WriteTo(frame, &packet.Addr{HardwareAddr: to.MAC})
			}
		})
	}()
	return p, nil
}

// Stop ends probing and waits for the last round.
func (p *DirectedProber) Stop() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// Rounds returns the rounds so far.
func (p *DirectedProber) Rounds() []DirectedRound {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]DirectedRound, len(p.rounds))
	for i, r := range p.rounds {
		out[i] = DirectedRound{Sent: r.Sent, From: slices.Clone(r.From)}
	}
	return out
}

// udpFrame builds an Ethernet frame carrying an IPv4 UDP datagram (UDP checksum
// 0: none, which IPv4 allows).
func udpFrame(srcMAC, dstMAC net.HardwareAddr, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 14+20+8+len(payload))
	copy(b[0:6], dstMAC)
	copy(b[6:12], srcMAC)
	binary.BigEndian.PutUint16(b[12:14], 0x0800)
	ip := b[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], uint16(20+8+len(payload)))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	s4, d4 := src.As4(), dst.As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(ip[i : i+2]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(ip[10:12], ^uint16(sum))
	udp := b[34:42]
	binary.BigEndian.PutUint16(udp[0:2], sport)
	binary.BigEndian.PutUint16(udp[2:4], dport)
	binary.BigEndian.PutUint16(udp[4:6], uint16(8+len(payload)))
	copy(b[42:], payload)
	return b
}

// WithRawIPv4 runs fn in the host with a raw IPv4 socket of protocol 112 on its
// eth0 that sends whole packets (IP header included), as a forger of VRRP adverts
// would.
func (h *Host) WithRawIPv4(fn func(send func(pkt []byte, dst netip.Addr) error) error) error {
	return h.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW, 112)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_HDRINCL, 1); err != nil {
			return err
		}
		if err := unix.BindToDevice(fd, h.Iface); err != nil {
			return err
		}
		return fn(func(pkt []byte, dst netip.Addr) error {
			return unix.Sendto(fd, pkt, 0, &unix.SockaddrInet4{Addr: dst.As4()})
		})
	})
}
