package vrrp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const ms = time.Millisecond

var (
	us     = netip.MustParseAddr("192.0.2.12")
	higher = netip.MustParseAddr("192.0.2.13")
	lower  = netip.MustParseAddr("192.0.2.11")
)

// step is one input to a machine at a time, and what must come out of it.
type step struct {
	at   time.Duration
	do   func(m *Machine, now time.Duration) []Action
	acts string // the actions, as Action.String joins them
	// state and deadline after the step; deadline -1 means "not checked".
	state    State
	deadline time.Duration
}

func start(m *Machine, now time.Duration) []Action  { return m.Start(now) }
func expire(m *Machine, now time.Duration) []Action { return m.Expire(now, nil) }

func heard(addr netip.Addr, prio uint8, interval time.Duration) func(*Machine, time.Duration) []Action {
	return func(m *Machine, now time.Duration) []Action {
		return m.Advert(now, Heard{Addr: addr, Priority: prio, Interval: interval, At: now})
	}
}

// heardAt is an advert the kernel saw at at, handled later, at now.
func heardAt(addr netip.Addr, prio uint8, at time.Duration) func(*Machine, time.Duration) []Action {
	return func(m *Machine, now time.Duration) []Action {
		return m.Advert(now, Heard{Addr: addr, Priority: prio, Interval: 100 * ms, At: at})
	}
}

// expireSeeing fires the timer with the kernel's record of an advert seen at at.
func expireSeeing(addr netip.Addr, prio uint8, at time.Duration) func(*Machine, time.Duration) []Action {
	return func(m *Machine, now time.Duration) []Action {
		return m.Expire(now, &Heard{Addr: addr, Priority: prio, Interval: 100 * ms, At: at})
	}
}

func livenessLost(at time.Duration) func(*Machine, time.Duration) []Action {
	return func(m *Machine, now time.Duration) []Action { return m.LivenessLost(now, at) }
}

func joined(acts []Action) string {
	var s []string
	for _, a := range acts {
		s = append(s, a.String())
	}
	return strings.Join(s, " ")
}

// v3 at 100 ms, priority 100: Skew_Time 60.9375 ms, Master_Down_Interval 360.9375 ms.
const (
	skew100 = 60937500 * time.Nanosecond
	mdi100  = 300*ms + skew100
)

func TestMachineTransitions(t *testing.T) {
	base := Params{Version: 3, Priority: 100, Interval: 100 * ms, Addr: us}
	for _, tc := range []struct {
		name   string
		params func(*Params)
		steps  []step
	}{
		{"owner starts as master", func(p *Params) { p.Priority = 255 }, []step{
			{1000 * ms, start, "INIT->MASTER(address owner) advert(255)", Master, 1100 * ms},
		}},
		{"backup takes over when no master speaks", nil, []step{
			{1000 * ms, start, "INIT->BACKUP(init)", Backup, 1000*ms + mdi100},
			{1000*ms + mdi100 - 1, expire, "", Backup, 1000*ms + mdi100},
			{1000*ms + mdi100, expire, "BACKUP->MASTER(master down) advert(100)", Master, 1100*ms + mdi100},
			{1100*ms + mdi100, expire, "advert(100)", Master, 1200*ms + mdi100},
		}},
		{"a higher master holds the backup", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{200 * ms, heard(higher, 150, 100*ms), "", Backup, 200*ms + mdi100},
			{mdi100, expire, "", Backup, 200*ms + mdi100},
		}},
		{"a stale advert does not pull the deadline back", nil, []step{
			// The timer saw the kernel's record of an advert at 300 ms; an
			// event for the older one at 200 ms, queued while the daemon was
			// descheduled, comes after it.
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{mdi100, expireSeeing(higher, 150, 300*ms), "", Backup, 300*ms + mdi100},
			{mdi100 + 1, heardAt(higher, 150, 200*ms), "", Backup, 300*ms + mdi100},
			{200*ms + mdi100, expire, "", Backup, 300*ms + mdi100},
		}},
		{"an equal master holds the backup", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{200 * ms, heard(lower, 100, 100*ms), "", Backup, 200*ms + mdi100},
		}},
		{"v3 backup adopts the master's interval", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			// 3 × 1 s + (256-100) × 1 s / 256
			{100 * ms, heard(higher, 150, time.Second), "", Backup, 100*ms + 3*time.Second + 609375*time.Microsecond},
		}},
		{"v2 skew is in seconds", func(p *Params) { p.Version = 2; p.Interval = time.Second }, []step{
			{0, start, "INIT->BACKUP(init)", Backup, 3*time.Second + 609375*time.Microsecond},
			{100 * ms, heard(higher, 150, 2*time.Second), "", Backup, 100*ms + 3*time.Second + 609375*time.Microsecond},
		}},
		{"priority 0 makes the backup take over after Skew_Time", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			{150 * ms, heard(higher, 0, 100*ms), "", Backup, 150*ms + skew100},
			{150*ms + skew100, expire, "BACKUP->MASTER(master down) advert(100)", Master, 250*ms + skew100},
		}},
		{"preempt: a lower master is ignored and replaced", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{200 * ms, heard(lower, 50, 100*ms), "", Backup, mdi100},
			{mdi100, expire, "BACKUP->MASTER(master down) advert(100)", Master, mdi100 + 100*ms},
		}},
		{"nopreempt: a lower master holds the backup", func(p *Params) { p.NoPreempt = true }, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{200 * ms, heard(lower, 50, 100*ms), "", Backup, 200*ms + mdi100},
		}},
		{"preempt_delay counts from the first lower advert", func(p *Params) { p.PreemptDelay = time.Second }, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{200 * ms, heard(lower, 50, 100*ms), "", Backup, 200*ms + mdi100},
			{1100 * ms, heard(lower, 50, 100*ms), "", Backup, 1100*ms + mdi100},
			{1200 * ms, heard(lower, 50, 100*ms), "", Backup, 1100*ms + mdi100},
			{1100*ms + mdi100, expire, "BACKUP->MASTER(master down) advert(100)", Master, -1},
		}},
		{"master yields to a higher priority", nil, []step{
			{0, func(m *Machine, now time.Duration) []Action { return m.Resume(now) }, "INIT->MASTER(resumed within lease) advert(100)", Master, 100 * ms},
			{50 * ms, heard(lower, 200, time.Second), "MASTER->BACKUP(higher priority advert from 192.0.2.11)", Backup, 50*ms + 3*time.Second + 609375*time.Microsecond},
		}},
		{"equal priority: the higher address wins", nil, []step{
			{0, func(m *Machine, now time.Duration) []Action { return m.Resume(now) }, "INIT->MASTER(resumed within lease) advert(100)", Master, 100 * ms},
			{50 * ms, heard(lower, 100, 100*ms), "advert(100)", Master, 150 * ms},
			{60 * ms, heard(higher, 100, 100*ms), "MASTER->BACKUP(higher priority advert from 192.0.2.13)", Backup, 60*ms + mdi100},
		}},
		{"master answers a lower master and a resignation at once", nil, []step{
			{0, func(m *Machine, now time.Duration) []Action { return m.Resume(now) }, "INIT->MASTER(resumed within lease) advert(100)", Master, 100 * ms},
			{30 * ms, heard(lower, 50, 100*ms), "advert(100)", Master, 130 * ms},
			{40 * ms, heard(lower, 0, 100*ms), "advert(100)", Master, 140 * ms},
		}},
		{"descheduled backup trusts the kernel's timestamp", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			// The daemon wakes 2 s late; the kernel saw the master 50 ms ago.
			{2000 * ms, expireSeeing(higher, 150, 1950*ms), "", Backup, 1950*ms + mdi100},
		}},
		{"the kernel's record can be too old", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			// Due at 1.5 s + mdi100, run 140 ms later: a stall, graced once.
			{2000 * ms, expireSeeing(higher, 150, 1500*ms), "", Backup, 2100*ms + skew100},
			{2100*ms + skew100, expireSeeing(higher, 150, 1500*ms), "BACKUP->MASTER(master down) advert(100)", Master, 2200*ms + skew100},
		}},
		{"a backup on time takes over without grace", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			// Late by Skew_Time exactly: within the RFC's timing.
			{100*ms + mdi100 + skew100, expire, "BACKUP->MASTER(master down) advert(100)", Master, -1},
		}},
		{"a stalled backup gives the master one more interval", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			// The whole host stalled for a second: the backup runs again at
			// 1.5 s, and so does the master, whose advert comes 2 ms later.
			{1500 * ms, expire, "", Backup, 1600*ms + skew100},
			{1502 * ms, heard(higher, 150, 100*ms), "", Backup, 1502*ms + mdi100},
			{1502*ms + mdi100 - 1, expire, "", Backup, 1502*ms + mdi100},
		}},
		{"a stalled backup whose grace the kernel's record answers", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			{1500 * ms, expire, "", Backup, 1600*ms + skew100},
			// The event for the advert was lost; the kernel's record has it.
			{1600*ms + skew100, expireSeeing(higher, 150, 1510*ms), "", Backup, 1510*ms + mdi100},
		}},
		{"a master that died during the stall is down one grace later", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			{1500 * ms, expire, "", Backup, 1600*ms + skew100},
			{1600*ms + skew100, expire, "BACKUP->MASTER(master down) advert(100)", Master, 1700*ms + skew100},
		}},
		{"one grace per stall: a second late wake-up takes over", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			{1500 * ms, expire, "", Backup, 1600*ms + skew100},
			// Stalled again past the grace, and still nothing from the master.
			{3000 * ms, expire, "BACKUP->MASTER(master down) advert(100)", Master, 3100 * ms},
		}},
		{"a fresh advert earns a later stall its own grace", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			{1500 * ms, expire, "", Backup, 1600*ms + skew100},
			{1502 * ms, heard(higher, 150, 100*ms), "", Backup, 1502*ms + mdi100},
			{3000 * ms, expire, "", Backup, 3100*ms + skew100},
			{3100*ms + skew100, expire, "BACKUP->MASTER(master down) advert(100)", Master, -1},
		}},
		{"no grace after the master resigned", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 0, 100*ms), "", Backup, 100*ms + skew100},
			{1500 * ms, expire, "BACKUP->MASTER(master down) advert(100)", Master, -1},
		}},
		{"a lower master in the kernel's record does not hold a preempting backup", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{mdi100, expireSeeing(lower, 50, mdi100-10*ms), "BACKUP->MASTER(master down) advert(100)", Master, -1},
		}},
		{"master learns of a missed higher advert from the kernel", nil, []step{
			{0, func(m *Machine, now time.Duration) []Action { return m.Resume(now) }, "INIT->MASTER(resumed within lease) advert(100)", Master, 100 * ms},
			{100 * ms, expireSeeing(higher, 200, 90*ms), "MASTER->BACKUP(higher priority advert from 192.0.2.13)", Backup, 90*ms + mdi100},
		}},
		{"fault: the master resigns, recovery goes to backup", nil, []step{
			{0, func(m *Machine, now time.Duration) []Action { return m.Resume(now) }, "INIT->MASTER(resumed within lease) advert(100)", Master, 100 * ms},
			{50 * ms, func(m *Machine, now time.Duration) []Action { return m.SetFault(now, true, "eth0 down") }, "advert(0) MASTER->FAULT(eth0 down)", Fault, 0},
			{60 * ms, heard(lower, 50, 100*ms), "", Fault, 0},
			{70 * ms, func(m *Machine, now time.Duration) []Action { return m.SetFault(now, true, "again") }, "", Fault, 0},
			{80 * ms, func(m *Machine, now time.Duration) []Action { return m.SetFault(now, false, "eth0 up") }, "FAULT->BACKUP(eth0 up)", Backup, 80*ms + mdi100},
		}},
		{"stop: a master resigns, a backup just stops", nil, []step{
			{0, func(m *Machine, now time.Duration) []Action { return m.Resume(now) }, "INIT->MASTER(resumed within lease) advert(100)", Master, 100 * ms},
			{50 * ms, func(m *Machine, now time.Duration) []Action { return m.Stop(now) }, "advert(0) MASTER->INIT(stop)", Init, 0},
			{60 * ms, start, "INIT->BACKUP(init)", Backup, 60*ms + mdi100},
			{70 * ms, func(m *Machine, now time.Duration) []Action { return m.Stop(now) }, "BACKUP->INIT(stop)", Init, 0},
		}},
		{"a master advertises a priority change at once", nil, []step{
			{0, func(m *Machine, now time.Duration) []Action { return m.Resume(now) }, "INIT->MASTER(resumed within lease) advert(100)", Master, 100 * ms},
			{30 * ms, func(m *Machine, now time.Duration) []Action { return m.SetPriority(now, 90) }, "advert(90)", Master, 130 * ms},
			{40 * ms, func(m *Machine, now time.Duration) []Action { return m.SetPriority(now, 90) }, "", Master, 130 * ms},
		}},
		{"fast_liveness: a lost master is taken over at once, well before Master_Down", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			// The kernel said so at 110 ms; the daemon hears it at 111 ms.
			{111 * ms, livenessLost(110 * ms), "BACKUP->MASTER(master down (fast_liveness)) advert(100)", Master, 211 * ms},
			// A master ignores it.
			{120 * ms, livenessLost(119 * ms), "", Master, 211 * ms},
		}},
		{"fast_liveness: word older than the last advert is stale", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{100 * ms, heard(higher, 150, 100*ms), "", Backup, 100*ms + mdi100},
			{101 * ms, livenessLost(99 * ms), "", Backup, 100*ms + mdi100},
		}},
		{"fast_liveness: no word in FAULT or INIT", nil, []step{
			{0, livenessLost(0), "", Init, 0},
			{2 * ms, start, "INIT->BACKUP(init)", Backup, 2*ms + mdi100},
			{3 * ms, func(m *Machine, now time.Duration) []Action { return m.SetFault(now, true, "link") }, "BACKUP->FAULT(link)", Fault, 0},
			{4 * ms, livenessLost(4 * ms), "", Fault, 0},
		}},
		{"sync group members are forced along", nil, []step{
			{0, start, "INIT->BACKUP(init)", Backup, mdi100},
			{10 * ms, func(m *Machine, now time.Duration) []Action { return m.Force(now, Master, "sync group") }, "BACKUP->MASTER(sync group) advert(100)", Master, 110 * ms},
			{20 * ms, func(m *Machine, now time.Duration) []Action { return m.Force(now, Backup, "sync group") }, "MASTER->BACKUP(sync group)", Backup, 20*ms + mdi100},
			{30 * ms, func(m *Machine, now time.Duration) []Action { return m.Force(now, Fault, "sync group") }, "BACKUP->FAULT(sync group)", Fault, 0},
			{40 * ms, func(m *Machine, now time.Duration) []Action { return m.Force(now, Master, "sync group") }, "", Fault, 0},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := base
			if tc.params != nil {
				tc.params(&p)
			}
			m := NewMachine(p)
			for i, s := range tc.steps {
				got := joined(s.do(m, s.at))
				if got != s.acts {
					t.Errorf("step %d at %v: actions %q, want %q", i, s.at, got, s.acts)
				}
				if m.State() != s.state {
					t.Errorf("step %d at %v: state %v, want %v", i, s.at, m.State(), s.state)
				}
				if s.deadline >= 0 && m.Deadline() != s.deadline {
					t.Errorf("step %d at %v: deadline %v, want %v", i, s.at, m.Deadline(), s.deadline)
				}
			}
		})
	}
}

func TestMasterDownInterval(t *testing.T) {
	for _, tc := range []struct {
		version, prio uint8
		interval      time.Duration
		adverts       int
		want          time.Duration
	}{
		{3, 100, 100 * ms, 0, mdi100},
		{3, 254, time.Second, 3, 3*time.Second + 2*time.Second/256},
		{3, 1, 10 * ms, 0, 30*ms + 255*10*ms/256},
		{2, 100, time.Second, 0, 3*time.Second + 156*time.Second/256},
		{3, 100, 100 * ms, 5, 500*ms + skew100},
	} {
		if got := MasterDownInterval(tc.version, tc.prio, tc.interval, tc.adverts); got != tc.want {
			t.Errorf("MasterDownInterval(%d, %d, %v, %d) = %v, want %v", tc.version, tc.prio, tc.interval, tc.adverts, got, tc.want)
		}
	}
}

func ExampleMachine() {
	m := NewMachine(Params{Version: 3, Priority: 100, Interval: 100 * ms, Addr: us})
	fmt.Println(m.Start(0), m.Deadline())
	fmt.Println(m.Expire(m.Deadline(), nil))
	// Output:
	// [INIT->BACKUP(init)] 360.9375ms
	// [BACKUP->MASTER(master down) advert(100)]
}

// TestLeaseOutlastsEveryBackup: for every version, advert interval and
// down_timer_adverts a configuration may give, the master's lease past an
// advert ends after the Master_Down_Interval of a backup of any priority that
// heard it, leaving it at least an interval (LeaseMargin at least) to announce
// itself, and no later than that: the bound on a frozen master nobody's advert
// can reach.
func TestLeaseOutlastsEveryBackup(t *testing.T) {
	check := func(version uint8, iv time.Duration, adverts int) {
		lease := Lease(version, iv, adverts)
		margin := max(iv, LeaseMargin)
		for prio := 1; prio <= 254; prio++ {
			if mdi := MasterDownInterval(version, uint8(prio), iv, adverts); lease < mdi+margin {
				t.Fatalf("v%d every %v, down_timer_adverts %d: lease %v, backup of priority %d takes over after %v, leaving less than %v",
					version, iv, adverts, lease, prio, mdi, margin)
			}
		}
		if bound := MasterDownInterval(version, 1, iv, adverts) + margin; lease > bound {
			t.Fatalf("v%d every %v, down_timer_adverts %d: lease %v, past the bound %v", version, iv, adverts, lease, bound)
		}
	}
	for adverts := 0; adverts <= 100; adverts++ { // 0: the default, 3
		for s := 1; s <= 255; s++ {
			check(2, time.Duration(s)*time.Second, adverts)
		}
		for cs := 1; cs <= 4095; cs++ {
			check(3, time.Duration(cs)*IntervalUnitV3, adverts)
		}
	}
}

func TestStallGrace(t *testing.T) {
	const iv, skew = 10 * ms, 6 * ms
	for _, tc := range []struct {
		name          string
		deadline, now time.Duration
		graced        bool
		want          time.Duration
	}{
		{"on time", 100 * ms, 100 * ms, false, 0},
		{"late within skew", 100 * ms, 106 * ms, false, 0},
		{"late past skew", 100 * ms, 106*ms + 1, false, 106*ms + 1 + iv + skew},
		{"stalled a second", 100 * ms, 1100 * ms, false, 1100*ms + iv + skew},
		{"graced already", 100 * ms, 1100 * ms, true, 0},
	} {
		if got := StallGrace(tc.deadline, tc.now, iv, skew, tc.graced); got != tc.want {
			t.Errorf("%s: StallGrace(%v, %v, graced %v) = %v, want %v", tc.name, tc.deadline, tc.now, tc.graced, got, tc.want)
		}
	}
}

// TestHeldOffBy: the advert that restarted a backup's Master_Down_Timer, whose
// deadline is then Master_Down_Interval after it; zero when the timer runs
// from anything else.
func TestHeldOffBy(t *testing.T) {
	iv := 10 * ms
	m := NewMachine(Params{Version: 3, Priority: 100, Interval: iv, Addr: us})
	check := func(what string, want time.Duration) {
		t.Helper()
		if got := m.HeldOffBy(); got != want {
			t.Errorf("%s: HeldOffBy %v, want %v", what, got, want)
		}
		if want != 0 && m.Deadline() != want+MasterDownInterval(3, 100, 20*ms, 3) {
			t.Errorf("%s: deadline %v, want %v after %v", what, m.Deadline(), MasterDownInterval(3, 100, 20*ms, 3), want)
		}
	}
	m.Start(0)
	check("entering BACKUP", 0)
	m.Advert(5*ms, Heard{Addr: higher, Priority: 150, Interval: 20 * ms, At: 5 * ms})
	check("a higher priority", 5*ms)
	m.Advert(7*ms, Heard{Addr: lower, Priority: 50, Interval: 20 * ms, At: 7 * ms})
	check("a lower priority, preempting", 5*ms)
	m.Advert(8*ms, Heard{Addr: higher, Priority: 100, Interval: 20 * ms, At: 8 * ms})
	check("an equal priority", 8*ms)
	m.Advert(9*ms, Heard{Addr: higher, Priority: 0, Interval: 20 * ms, At: 9 * ms})
	check("a resignation", 0)
	m.Advert(10*ms, Heard{Addr: higher, Priority: 150, Interval: 20 * ms, At: 10 * ms})
	check("a new master", 10*ms)
	m.Expire(m.Deadline(), nil) // on time: no stall grace
	check("MASTER", 0)
	m.SetPreempt(true, 0)
	m.Advert(time.Second, Heard{Addr: higher, Priority: 250, Interval: 20 * ms, At: time.Second})
	check("beaten", time.Second)
	m.Advert(2*time.Second, Heard{Addr: lower, Priority: 50, Interval: 20 * ms, At: 2 * time.Second})
	check("nopreempt, a lower priority", 2*time.Second)
}

// TestAlignAdverts: a master's adverts fall on its interval's grid, the first
// after a takeover sooner than an interval; two instances that became master
// apart fall due together from then on.
func TestAlignAdverts(t *testing.T) {
	iv := 10 * ms
	a := NewMachine(Params{Version: 3, Priority: 255, Interval: iv, Addr: us, AlignAdverts: true})
	b := NewMachine(Params{Version: 3, Priority: 255, Interval: 20 * ms, Addr: us, AlignAdverts: true})
	a.Start(1003 * time.Microsecond)
	b.Start(1007 * time.Microsecond)
	if a.Deadline() != 10*ms || b.Deadline() != 20*ms {
		t.Fatalf("first deadlines %v and %v, want 10ms and 20ms", a.Deadline(), b.Deadline())
	}
	// Timers late by a little: still on the grid.
	a.Expire(10*ms+300*time.Microsecond, nil)
	if a.Deadline() != 20*ms {
		t.Errorf("after a late wake: %v, want 20ms", a.Deadline())
	}
	a.Expire(20*ms+50*time.Microsecond, nil)
	b.Expire(20*ms+50*time.Microsecond, nil)
	if a.Deadline() != 30*ms || b.Deadline() != 40*ms {
		t.Errorf("deadlines %v and %v, want 30ms and 40ms", a.Deadline(), b.Deadline())
	}
	// Never more than an interval apart.
	for now := 30 * ms; now < time.Second; now += 7 * ms {
		if now >= a.Deadline() {
			prev := a.Deadline()
			a.Expire(now, nil)
			if d := a.Deadline(); d <= now || d-now > iv || d%iv != 0 {
				t.Fatalf("at %v (due %v): next %v", now, prev, d)
			}
		}
	}
}

// TestSilentOnMasterDown: a backup that takes over on its Master_Down_Timer
// says how long the master had been silent by the kernel's time stamps — from
// the advert that last held it off, not from when its daemon handled it — and
// nothing when no advert had (it never heard a master).
func TestSilentOnMasterDown(t *testing.T) {
	iv := 10 * ms
	mdi := MasterDownInterval(3, 100, iv, 3)
	m := NewMachine(Params{Version: 3, Priority: 100, Interval: iv, Addr: us})
	m.Start(0)
	m.Advert(8*ms, Heard{Addr: higher, Priority: 150, Interval: iv, At: 5 * ms}) // handled 3 ms late
	acts := m.Expire(5*ms+mdi+ms, nil)
	if len(acts) == 0 || acts[0].Kind != ActTransition || acts[0].To != Master {
		t.Fatalf("Expire at the deadline: %v, want MASTER", joined(acts))
	}
	if want := mdi + ms; acts[0].Silent != want {
		t.Errorf("silent %v, want %v (from the advert's time stamp)", acts[0].Silent, want)
	}

	m = NewMachine(Params{Version: 3, Priority: 100, Interval: iv, Addr: us})
	m.Start(0)
	acts = m.Expire(m.Deadline(), nil)
	if len(acts) == 0 || acts[0].To != Master || acts[0].Silent != 0 {
		t.Errorf("no master ever heard: %v silent %v, want MASTER with no silence told", joined(acts), acts[0].Silent)
	}
}
