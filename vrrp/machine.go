package vrrp

import (
	"fmt"
	"net/netip"
	"time"
)

// State is an instance's VRRP state: RFC 5798's three and keepalived's FAULT.
type State uint8

const (
	Init State = iota
	Backup
	Master
	Fault
)

func (s State) String() string {
	switch s {
	case Init:
		return "INIT"
	case Backup:
		return "BACKUP"
	case Master:
		return "MASTER"
	case Fault:
		return "FAULT"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Params are what a Machine needs to know of its instance.
type Params struct {
	Version  uint8
	Priority uint8 // effective priority, 1–255
	Interval time.Duration
	// Addr is the primary address adverts are sent from, which breaks ties between
	// equal priorities (the higher wins).
	Addr netip.Addr
	// NoPreempt keeps a backup from taking over from a lower-priority master.
	NoPreempt bool
	// PreemptDelay holds off preemption for this long after the backup first
	// hears a lower-priority master.
	PreemptDelay time.Duration
	// DownAdverts is how many missed adverts make a master down; 3 when zero.
	DownAdverts int
	// LowerPrioNoAdvert: a master does not answer a lower-priority master's
	// advert with one of its own, as RFC 5798 has it (keepalived's
	// lower_prio_no_advert); it waits for its next advert.
	LowerPrioNoAdvert bool
	// AlignAdverts puts a master's adverts on a grid of its interval on the
	// clock (its multiples since the clock's zero): instances with the same
	// interval, or multiples of one, fall due together, and the runtime sends
	// them in one wakeup and one batch. The advert after one sent off the grid
	// (a takeover, an answer) comes sooner than an interval, never later.
	AlignAdverts bool
	// HigherPrioSendAdvert: a master beaten by a higher-priority advert sends
	// one more advert of its own before it steps down, so that the winner,
	// hearing a lower priority, repeats its gratuitous ARPs (keepalived's
	// higher_prio_send_advert: two masters after a partition).
	HigherPrioSendAdvert bool
}

// Heard is an advert the kernel accepted: its source, priority and interval, and
// when the kernel saw it (CLOCK_MONOTONIC, the clock every time here is on).
type Heard struct {
	Addr     netip.Addr
	Priority uint8
	Interval time.Duration
	At       time.Duration
}

// ActionKind says what the runtime must do.
type ActionKind uint8

const (
	// ActTransition: the state changed from From to To. Entering MASTER means
	// mark the kernel's instance MASTER with a fresh lease, add the VIPs, then
	// send gratuitous ARPs; leaving it means fence, then remove the VIPs.
	ActTransition ActionKind = iota + 1
	// ActAdvert: send an advert with Priority (0 when resigning).
	ActAdvert
)

// Action is one thing for the runtime to do, in order.
type Action struct {
	Kind     ActionKind
	From, To State
	Priority uint8
	Why      string
	// Silent is, for a backup that takes over on its Master_Down_Timer, how
	// long the master had been silent when it decided: from the advert that
	// last restarted the timer (the kernel's time stamp) to then. Zero when
	// no advert did (the timer ran from entering BACKUP or a resignation).
	Silent time.Duration
}

func (a Action) String() string {
	if a.Kind == ActAdvert {
		return fmt.Sprintf("advert(%d)", a.Priority)
	}
	return fmt.Sprintf("%v->%v(%s)", a.From, a.To, a.Why)
}

// Machine is the RFC 5798 state machine of one instance, with keepalived's FAULT
// state and preemption settings. It is pure: every input carries the time, and
// every output is an Action; Deadline says when it wants Expire called.
type Machine struct {
	p     Params
	state State
	// deadline is the Adver_Timer (MASTER) or the Master_Down_Timer (BACKUP);
	// zero when none runs.
	deadline time.Duration
	// masterInterval is Master_Adver_Interval: the master's advertised interval
	// (v3), our own until we hear one.
	masterInterval time.Duration
	// preemptAt is when a backup may preempt the lower-priority master it hears;
	// zero until it first hears one.
	preemptAt time.Duration
	// heard is the last advert Advert or Expire was given.
	heard time.Duration
	// graced: this run of the Master_Down_Timer has had its stall grace
	// (StallGrace); a newer advert starts a new run.
	graced bool
	// resigned: the master's last advert had priority 0.
	resigned bool
	// heldOffBy is the kernel time of the advert that last restarted a
	// backup's Master_Down_Timer; zero when the timer runs from something
	// else (entering BACKUP, a resignation) or none runs.
	heldOffBy time.Duration
}

// NewMachine returns a machine in Init.
func NewMachine(p Params) *Machine {
	return &Machine{p: p, masterInterval: p.Interval}
}

func (m *Machine) State() State            { return m.state }
func (m *Machine) Priority() uint8         { return m.p.Priority }
func (m *Machine) Deadline() time.Duration { return m.deadline }

// Graced reports whether a backup's Master_Down_Timer runs on its stall grace
// (StallGrace).
func (m *Machine) Graced() bool { return m.state == Backup && m.graced }

// HeldOffBy is the time of the advert that last restarted a backup's
// Master_Down_Timer, which then runs out Master_Down_Interval after it: the
// rule a kernel that restarts the timer at each such advert follows too
// (hold_off in bpf/xvrrp.c). Zero when the timer runs from anything else —
// entering BACKUP, a resignation's Skew_Time — or the machine is no backup.
func (m *Machine) HeldOffBy() time.Duration {
	if m.state != Backup {
		return 0
	}
	return m.heldOffBy
}

// SkewTime is RFC 5798's Skew_Time for a backup of the given priority: a
// fraction of the master's interval (v3) or of a second (v2).
func SkewTime(version, priority uint8, masterInterval time.Duration) time.Duration {
	if version == 2 {
		masterInterval = time.Second
	}
	return time.Duration(256-int64(priority)) * masterInterval / 256
}

// MasterDownInterval is adverts (3 by the RFCs; keepalived's down_timer_adverts)
// master intervals plus Skew_Time.
func MasterDownInterval(version, priority uint8, masterInterval time.Duration, adverts int) time.Duration {
	if adverts <= 0 {
		adverts = 3
	}
	return time.Duration(adverts)*masterInterval + SkewTime(version, priority, masterInterval)
}

// LeaseMargin is the least time a lease leaves the slowest backup, past its
// Master_Down_Interval, to take over and announce itself: its daemon's
// wake-up, the netlink calls that add the VIPs, the send, on a busy host.
const LeaseMargin = 20 * time.Millisecond

// Lease is how long past each advert a master may answer for its VIPs: the
// Master_Down_Interval of a backup of priority 1, which every real backup
// (1–254) reaches first, plus one interval (LeaseMargin at least) for that
// backup to announce itself. A master whose daemon stops renewing — killed,
// frozen — keeps answering until its successor's first advert reaches its
// kernel, which ends the lease then and there (let_go in bpf/xvrrp.c: not
// renewed for more than an interval), so clients go without an answer only
// for the takeover itself and never get two. The lease is the bound for when
// no advert can reach it: a frozen master that is also cut off from its
// backups stops by itself when it ends (docs/architecture.md, "How long the
// lease runs").
func Lease(version uint8, interval time.Duration, adverts int) time.Duration {
	return MasterDownInterval(version, 1, interval, adverts) + max(interval, LeaseMargin)
}

// StallGrace is the rule for a backup that was itself stalled. Its
// Master_Down_Timer was due at deadline; it runs at now, and neither an event
// nor the kernel's record shows an advert newer than the one that set the
// timer. If it woke more than skew (its Skew_Time) late and this run of the
// timer has not been graced yet, it was not running when it should have
// decided, and the silence it measured is not the master's: a stall of the
// whole host (a virtual machine paused, a storm of page faults, every daemon
// stopped) froze the master's adverts with it. It then gives the master one
// more advert interval plus Skew_Time from now, the moment it runs again, and
// reads the kernel's adverts once more at that deadline, which StallGrace
// returns. It returns 0 when the master is down: the timer fired within skew
// of its deadline, or it was graced already, so that a master that really
// died is declared down at most masterInterval + skew after the stall ends,
// and a host that keeps stalling cannot hold a backup off for ever.
//
// Why Skew_Time: the RFC gives a backup no other slack in deciding than its
// Skew_Time — it orders the backups of a VRID — so a wake-up that late has
// already left the RFC's timing, while an ordinary real-time wake-up (tens of
// microseconds) stays well inside it, so a backup that was running decides as
// the RFC says. Why masterInterval + skew: a master frozen with the host sends
// at once when it runs again (its Adver_Timer passed during the stall) or, at
// the latest, one interval later; Skew_Time keeps the backups' order.
//
// The kernel's Master_Down_Timer (bpf_timer) applies no rule of its own: it
// tells the daemon, which applies this one as at the moment it got the word
// (agent's masterDown).
func StallGrace(deadline, now, masterInterval, skew time.Duration, graced bool) time.Duration {
	if graced || now-deadline <= skew {
		return 0
	}
	return now + masterInterval + skew
}

// nextAdvert is when a master sends its next advert, sending one at now: an
// interval later, or the first point of its grid after now (AlignAdverts).
func (m *Machine) nextAdvert(now time.Duration) time.Duration {
	next := now + m.p.Interval
	if m.p.AlignAdverts && m.p.Interval > 0 {
		next -= next % m.p.Interval
	}
	return next
}

// LivenessServes is how long after its daemon last renewed the lease a
// master's kernel answers fast_liveness probes (while the lease runs, too):
// until half an interval past the renewal its next advert was due. The lease
// runs longer, so a frozen master serves clients until its successor
// announces itself, but it stops answering probes as soon as its daemon is
// late, and liveness takes over from it (liveness_serving in bpf/liveness.h).
func LivenessServes(interval time.Duration) time.Duration {
	return interval + interval/2
}

// LivenessTimeout is how long after a master's last liveness reply a backup's
// kernel looks for missed ones: multiplier probe intervals and a skew by
// priority, as Skew_Time scales Master_Down_Interval, so that of several
// backups probing one master the highest priority notices first.
func LivenessTimeout(interval time.Duration, multiplier int, priority uint8) time.Duration {
	return time.Duration(multiplier)*interval + time.Duration(256-int64(priority))*interval/256
}

func (m *Machine) masterDown() time.Duration {
	return MasterDownInterval(m.p.Version, m.p.Priority, m.masterInterval, m.p.DownAdverts)
}

func (m *Machine) skew() time.Duration {
	return SkewTime(m.p.Version, m.p.Priority, m.masterInterval)
}

// Start leaves Init: the address owner (priority 255) becomes master at once,
// any other instance a backup waiting Master_Down_Interval.
func (m *Machine) Start(now time.Duration) []Action {
	if m.state != Init {
		return nil
	}
	if m.p.Priority == 255 {
		return m.toMaster(now, "address owner")
	}
	return m.toBackup(now, nil, "init")
}

// Resume starts a machine as master without a gap, for a daemon restarting
// within the lease its previous run left in the kernel.
func (m *Machine) Resume(now time.Duration) []Action {
	if m.state != Init {
		return nil
	}
	return m.toMaster(now, "resumed within lease")
}

// beats reports whether an advert from h wins over our own: a higher priority,
// or an equal one from a higher primary address.
func (m *Machine) beats(h Heard) bool {
	if h.Priority != m.p.Priority {
		return h.Priority > m.p.Priority
	}
	return h.Addr.Compare(m.p.Addr) > 0
}

// Advert takes an advert the kernel accepted for this instance.
//
// Adverts may come out of the order the kernel saw them in (an event queued
// while the daemon was descheduled, handled after the timer re-read the
// kernel's newer record): a backup's deadline follows the newest advert heard,
// and an older one never pulls it back.
func (m *Machine) Advert(now time.Duration, h Heard) []Action {
	stale := h.At < m.heard
	if h.At > m.heard {
		m.heard = h.At
	}
	switch m.state {
	case Backup:
		if stale {
			return nil
		}
		if h.Priority == 0 {
			// The master resigned: take over after Skew_Time.
			m.deadline = h.At + m.skew()
			m.graced, m.resigned = false, true
			m.heldOffBy = 0
			return nil
		}
		if m.accepts(now, h) {
			if m.p.Version == 3 && h.Interval > 0 {
				m.masterInterval = h.Interval
			}
			m.deadline = h.At + m.masterDown()
			m.graced, m.resigned = false, false
			m.heldOffBy = h.At
		}
		// A lower-priority master with preemption on: the Master_Down_Timer
		// runs out and we take over.
		return nil
	case Master:
		if h.Priority == 0 {
			// Another router resigned: advertise at once so backups move on.
			m.deadline = m.nextAdvert(now)
			return []Action{{Kind: ActAdvert, Priority: m.p.Priority}}
		}
		if m.beats(h) {
			acts := m.toBackup(now, &h, fmt.Sprintf("higher priority advert from %v", h.Addr))
			if m.p.HigherPrioSendAdvert {
				acts = append([]Action{{Kind: ActAdvert, Priority: m.p.Priority}}, acts...)
			}
			return acts
		}
		if m.p.LowerPrioNoAdvert {
			return nil
		}
		// keepalived answers a lower-priority master at once, so that it steps
		// down without waiting for our next advert.
		m.deadline = m.nextAdvert(now)
		return []Action{{Kind: ActAdvert, Priority: m.p.Priority}}
	}
	return nil
}

// accepts reports whether a backup defers to h's sender: it is at least as
// good as us, or we do not preempt, or not yet.
func (m *Machine) accepts(now time.Duration, h Heard) bool {
	if m.p.NoPreempt || h.Priority >= m.p.Priority {
		return true
	}
	if m.p.PreemptDelay > 0 {
		if m.preemptAt == 0 {
			m.preemptAt = now + m.p.PreemptDelay
		}
		return now < m.preemptAt
	}
	return false
}

// Expire is called at or after Deadline. last is the kernel's latest record of an
// advert for this instance, read when the timer fired, or nil: a backup whose
// daemon was descheduled does not declare a master dead whose adverts the kernel
// saw in time.
func (m *Machine) Expire(now time.Duration, last *Heard) []Action {
	if m.deadline == 0 || now < m.deadline {
		return nil
	}
	switch m.state {
	case Backup:
		if last != nil && last.At > m.heard {
			m.Advert(now, *last)
			if m.state == Backup && now < m.deadline {
				return nil
			}
		}
		if !m.resigned {
			if next := StallGrace(m.deadline, now, m.masterInterval, m.skew(), m.graced); next != 0 {
				m.deadline, m.graced = next, true
				return nil
			}
		}
		since := m.heldOffBy
		acts := m.toMaster(now, "master down")
		if since != 0 {
			acts[0].Silent = now - since
		}
		return acts
	case Master:
		if last != nil && last.At > m.heard && last.Priority != 0 {
			m.heard = last.At
			if m.beats(*last) {
				return m.toBackup(now, last, fmt.Sprintf("higher priority advert from %v", last.Addr))
			}
		}
		m.deadline = m.nextAdvert(now)
		return []Action{{Kind: ActAdvert, Priority: m.p.Priority}}
	}
	return nil
}

// LivenessLost takes the kernel's word that the master, whose adverts a
// backup was waiting on, left fast_liveness's probes unanswered (at = when the
// kernel said so): the backup takes over at once, as when Master_Down_Timer
// fires. A state other than BACKUP, or a word older than the last advert heard
// (a new master spoke since), changes nothing.
func (m *Machine) LivenessLost(now, at time.Duration) []Action {
	if m.state != Backup || at < m.heard {
		return nil
	}
	return m.toMaster(now, "master down (fast_liveness)")
}

// SetPreempt changes the preemption settings, as a reload does.
func (m *Machine) SetPreempt(noPreempt bool, delay time.Duration) {
	m.p.NoPreempt, m.p.PreemptDelay = noPreempt, delay
}

// SetPriority changes the effective priority; a master advertises it at once.
func (m *Machine) SetPriority(now time.Duration, p uint8) []Action {
	if p == m.p.Priority {
		return nil
	}
	m.p.Priority = p
	if m.state == Master {
		m.deadline = m.nextAdvert(now)
		return []Action{{Kind: ActAdvert, Priority: p}}
	}
	return nil
}

// SetFault puts the instance in FAULT (a master resigns with priority 0) or
// takes it out, to BACKUP.
func (m *Machine) SetFault(now time.Duration, fault bool, why string) []Action {
	switch {
	case fault && m.state == Fault, !fault && m.state != Fault:
		return nil
	case fault:
		var acts []Action
		if m.state == Master {
			acts = append(acts, Action{Kind: ActAdvert, Priority: 0})
		}
		acts = append(acts, m.transition(Fault, why))
		m.deadline = 0
		return acts
	default:
		return m.toBackup(now, nil, why)
	}
}

// Stop resigns: a master sends priority 0; every state returns to Init.
func (m *Machine) Stop(now time.Duration) []Action {
	if m.state == Init {
		return nil
	}
	var acts []Action
	if m.state == Master {
		acts = append(acts, Action{Kind: ActAdvert, Priority: 0})
	}
	acts = append(acts, m.transition(Init, "stop"))
	m.deadline = 0
	return acts
}

// Force moves a sync group member along with the rest of its group.
func (m *Machine) Force(now time.Duration, s State, why string) []Action {
	if s == m.state || m.state == Init {
		return nil
	}
	switch s {
	case Master:
		if m.state == Fault {
			return nil
		}
		return m.toMaster(now, why)
	case Backup:
		if m.state == Fault {
			return nil
		}
		return m.toBackup(now, nil, why)
	case Fault:
		return m.SetFault(now, true, why)
	}
	return nil
}

func (m *Machine) transition(to State, why string) Action {
	a := Action{Kind: ActTransition, From: m.state, To: to, Why: why}
	m.state = to
	m.preemptAt = 0
	m.heldOffBy = 0
	return a
}

func (m *Machine) toMaster(now time.Duration, why string) []Action {
	acts := []Action{m.transition(Master, why), {Kind: ActAdvert, Priority: m.p.Priority}}
	m.masterInterval = m.p.Interval
	m.deadline = m.nextAdvert(now)
	return acts
}

func (m *Machine) toBackup(now time.Duration, h *Heard, why string) []Action {
	acts := []Action{m.transition(Backup, why)}
	m.graced, m.resigned = false, false
	m.deadline = now + m.masterDown()
	if h != nil {
		if m.p.Version == 3 && h.Interval > 0 {
			m.masterInterval = h.Interval
		}
		m.deadline = h.At + m.masterDown()
		m.heldOffBy = h.At
	}
	return acts
}
