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
			{2000 * ms, expireSeeing(higher, 150, 1500*ms), "BACKUP->MASTER(master down) advert(100)", Master, 2100 * ms},
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
