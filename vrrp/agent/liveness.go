package agent

import (
	"fmt"
	"log/slog"

	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// fast_liveness, the daemon's part: a backup's prober sends a probe to its
// master every interval; the kernel does the rest (bpf/liveness.h) and says
// when the master stopped answering, which the event loop takes as
// Master_Down (Machine.LivenessLost).

// probeTarget is what a prober probes for: the instance's kernel key (its
// interface and VRID) and the address it sends from; nil: nothing (the
// instance is not BACKUP).
type probeTarget struct {
	key loader.Key
	src netip.Addr
}

// prober sends one instance's probes from its own goroutine, so that the event
// loop never waits on it, nor it on the event loop.
type prober struct {
	name     string
	interval time.Duration
	lookup   func(loader.Key) (loader.Liveness, error)
	log      *slog.Logger
	target   atomic.Pointer[probeTarget]
	stop     chan struct{}
	done     chan struct{}
	wake     chan struct{} // a target was set: the parked prober resumes
	sent     atomic.Uint64
}

func newProber(name string, interval time.Duration, lookup func(loader.Key) (loader.Liveness, error), log *slog.Logger) *prober {
	return &prober{name: name, interval: interval, lookup: lookup, log: log,
		stop: make(chan struct{}), done: make(chan struct{}), wake: make(chan struct{}, 1)}
}

// set says what to probe for; nil stops probing until set again.
func (p *prober) set(t *probeTarget) {
	cur := p.target.Load()
	if (cur == nil) != (t == nil) || (cur != nil && *cur != *t) {
		p.target.Store(t)
		if t != nil {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	}
}

func (p *prober) start() { go p.run() }

func (p *prober) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
		<-p.done
	}
}

// run sends a probe every interval to the master the kernel last heard
// adverts from (its address and MAC), re-read when the target changes and
// every 64 probes. The probe's nonce is the kernel's: tc egress writes it.
// It paces itself with a timerfd read through the runtime's poller, and
// disarms it and parks while there is nothing to probe.
func (p *prober) run() {
	defer close(p.done)
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		p.log.Error(fmt.Sprintf("(%s) fast_liveness: probe socket: %v; probing off", p.name, err))
		<-p.stop
		return
	}
	defer unix.Close(fd)
	tfd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		p.log.Error(fmt.Sprintf("(%s) fast_liveness: probe timer: %v; probing off", p.name, err))
		<-p.stop
		return
	}
	// In the runtime's poller: no thread sleeps in a system call between
	// probes (one did with clock_nanosleep, and the runtime's monitor woke
	// 2,500 times a second for it).
	timer := os.NewFile(uintptr(tfd), "fast_liveness timer")
	defer timer.Close()
	stopped := make(chan struct{})
	defer close(stopped)
	go func() {
		select {
		case <-p.stop:
			timer.Close() // a Read in progress returns
		case <-stopped:
		}
	}()
	arm := func(on bool) {
		var spec unix.ItimerSpec
		if on {
			spec.Interval = unix.NsecToTimespec(int64(p.interval))
			spec.Value = spec.Interval
		}
		unix.TimerfdSettime(tfd, 0, &spec, nil)
	}
	var (
		cur    *probeTarget
		master netip.Addr
		sa     unix.SockaddrLinklayer
		pkt    []byte
		n      int
		errAt  time.Time
		armed  bool
		ticks  [8]byte
	)
	for {
		t := p.target.Load()
		if t == nil {
			cur = nil
			if armed {
				arm(false)
				armed = false
			}
			select {
			case <-p.stop:
				return
			case <-p.wake:
			}
			continue
		}
		if !armed {
			arm(true)
			armed = true
		}
		if _, err := timer.Read(ticks[:]); err != nil {
			return // stopped
		}
		if t != cur || !master.IsValid() || n%64 == 0 {
			cur = t
			lv, err := p.lookup(t.key)
			if err != nil || !lv.Master.IsValid() || !lv.Master.Is4() {
				master = netip.Addr{}
				n = 1
				continue
			}
			if lv.Master != master || pkt == nil {
				master = lv.Master
				pkt = loader.ProbePacket(t.src, master, t.key.VRID, loader.ProbeTypeProbe, 0)
			}
			sa = unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: t.key.Ifindex, Halen: 6}
			copy(sa.Addr[:], lv.MAC)
		}
		n++
		if err := unix.Sendto(fd, pkt, 0, &sa); err != nil {
			if time.Since(errAt) > 10*time.Second {
				p.log.Warn(fmt.Sprintf("(%s) fast_liveness: send probe to %v: %v", p.name, master, err))
				errAt = time.Now()
			}
			continue
		}
		p.sent.Add(1)
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// livenessSpec is what the kernel of a backup needs for an instance's
// fast_liveness.
func livenessSpec(in *instance) loader.LivenessSpec {
	l := in.cfg.Liveness
	return loader.LivenessSpec{Interval: l.Interval, Multiplier: l.Multiplier,
		Timeout: vrrp.LivenessTimeout(l.Interval, l.Multiplier, in.cfg.Priority)}
}

// syncProbers points each prober at its instance's master while the instance
// is BACKUP on a live interface, and stops it otherwise.
func (a *Agent) syncProbers() {
	for _, in := range a.insts {
		if in.prober == nil {
			continue
		}
		if in.m.State() == vrrp.Backup && in.up && !in.gone {
			in.prober.set(&probeTarget{key: in.key, src: in.sender.src})
		} else {
			in.prober.set(nil)
		}
	}
}

// livenessLost takes the kernel's word that the master left multiplier probes
// unanswered: a backup takes over, as on Master_Down, unless the word is for a
// master it no longer follows.
func (a *Agent) livenessLost(in *instance, e loader.Heard) {
	if in.m.State() != vrrp.Backup {
		return
	}
	if h, err := a.dp.LastAdvert(in.key); err == nil && h.Addr != e.Addr {
		return
	}
	a.log.Info(fmt.Sprintf("(%s) master %v left %d fast_liveness probes unanswered", in.cfg.Name, e.Addr, in.cfg.Liveness.Multiplier))
	a.apply(in, in.m.LivenessLost(a.now(), e.At))
}

// closeProbers stops every prober.
func (a *Agent) closeProbers() {
	for _, in := range a.insts {
		if in.prober != nil {
			in.prober.close()
		}
	}
}
