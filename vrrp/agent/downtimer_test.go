package agent

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
)

// settle starts the rig's VI_1 as the backup of a master at 100 ms whose
// adverts the kernel keeps recording, for a second.
func settle(r *rig) {
	r.start()
	r.clock += 10 * time.Millisecond
	r.hear(51, "192.0.2.11", 150)
	for range 10 {
		r.clock += 100 * time.Millisecond
		r.record(51, "192.0.2.11", 150)
		if w := r.nextWake(); w != 0 && w <= r.clock {
			r.at(r.clock)
		}
	}
}

// holdOff is the kernel's hold_off on the fake: a valid advert re-arms a
// BACKUP's timer when it holds it off.
func (w *world) holdOff(key loader.Key, h vrrp.Heard) {
	d, st := w.downs[key], w.states[key]
	if d == nil || d.broken || st.State != vrrp.Backup || st.HandingOver || h.Priority == 0 ||
		!(d.NoPreempt || h.Priority >= st.Priority) {
		return
	}
	d.st.Heard, d.st.Interval = h.At, h.Interval
	d.st.Due = h.At + vrrp.MasterDownInterval(3, st.Priority, h.Interval, d.DownAdverts)
}

// record is an advert the kernel recorded without telling the agent: same
// source and priority as the last.
func (r *rig) record(vrid uint8, from string, prio uint8) {
	h := vrrp.Heard{Addr: netip.MustParseAddr(from), Priority: prio, Interval: 100 * time.Millisecond, At: r.clock}
	key := loader.Key{Ifindex: 2, VRID: vrid}
	r.w.heard[key] = h
	r.w.holdOff(key, h)
}

// A backup whose master keeps advertising wakes for its Master_Down_Timer
// once, to learn that the kernel runs it; then only for the sweep, however
// many adverts come; and takes over when the kernel says the timer ran out.
func TestBackupSleepsWhileKernelTimes(t *testing.T) {
	r := newRig(t, oneInstance(100, ""))
	key := loader.Key{Ifindex: 2, VRID: 51}
	r.start()
	r.clock += 10 * time.Millisecond
	r.hear(51, "192.0.2.11", 150)
	first := r.nextWake()
	if want := r.clock + vrrp.MasterDownInterval(3, 100, 100*time.Millisecond, 3); first != want {
		t.Fatalf("first wake at %v, want the machine's deadline %v", first, want)
	}
	wakes := 0
	end := r.clock + 10*time.Second
	for r.clock < end {
		r.clock += 100 * time.Millisecond
		r.record(51, "192.0.2.11", 150)
		if w := r.nextWake(); w != 0 && w <= r.clock {
			wakes++
			r.at(r.clock)
		}
	}
	if r.state("VI_1") != vrrp.Backup {
		t.Fatalf("took over from a live master: %v", r.state("VI_1"))
	}
	// One for the machine's first deadline, then the sweeps.
	if max := 1 + int(10*time.Second/sweepEvery); wakes > max {
		t.Errorf("%d wakeups in 10 s of adverts, want at most %d", wakes, max)
	}
	if next := r.nextWake(); next-r.clock > sweepEvery || next <= r.clock {
		t.Errorf("next wake %v after now, want the sweep's, at most %v", next-r.clock, sweepEvery)
	}
	// The loop woken for something else (another instance, a gratuitous
	// ARP) leaves the delegated backup alone: no read of the kernel.
	reads := r.w.lastReads
	r.at(r.clock + time.Millisecond)
	if r.w.lastReads != reads {
		t.Errorf("a wakeup for nothing of its own read the delegated backup's last advert %d times", r.w.lastReads-reads)
	}

	// The master stops; the kernel's timer runs out and says so.
	due := r.w.downs[key].st.Due
	r.clock = due
	r.event(loader.Heard{Key: key, Heard: vrrp.Heard{At: due}, MasterDown: true})
	r.loop()
	if got := r.state("VI_1"); got != vrrp.Master {
		t.Errorf("after MASTER_DOWN: %v, want MASTER", got)
	}
}

// The daemon keeps the deadline on its own timer while the kernel has not
// armed it (bpf_timer_init failed), after the entry was written again (a
// reload: that cancels it), and for preempt_delay, which the kernel is not
// given; a MASTER_DOWN that finds the master alive changes nothing.
func TestBackupTimesItselfUnlessKernelArmed(t *testing.T) {
	machineDeadline := func(r *rig) time.Duration { return r.insts[0].m.Deadline() }
	key := loader.Key{Ifindex: 2, VRID: 51}

	r := newRig(t, oneInstance(100, ""))
	r.w.downs[key].broken = true
	settle(r)
	if r.nextWake() != machineDeadline(r) {
		t.Errorf("kernel timer never armed: next wake %v, want the machine's deadline %v", r.nextWake(), machineDeadline(r))
	}

	r = newRig(t, oneInstance(100, "preempt_delay 5"))
	settle(r)
	if _, ok := r.w.downs[key]; ok {
		t.Errorf("preempt_delay: the kernel was given the timer")
	}
	if r.nextWake() != machineDeadline(r) {
		t.Errorf("preempt_delay: next wake %v, want the machine's deadline %v", r.nextWake(), machineDeadline(r))
	}

	r = newRig(t, oneInstance(100, ""))
	settle(r)
	if r.nextWake() == machineDeadline(r) {
		t.Fatalf("kernel armed, yet the daemon wakes at the machine's deadline")
	}
	in := r.insts[0]
	r.putDownTimer(in, r.clock) // what a reload that changes nopreempt does
	r.w.downs[key].st = loader.DownTimerState{}
	if r.nextWake() != machineDeadline(r) {
		t.Errorf("entry rewritten: next wake %v, want the machine's deadline %v", r.nextWake(), machineDeadline(r))
	}

	// A MASTER_DOWN for a master whose advert came meanwhile: still BACKUP.
	r = newRig(t, oneInstance(100, ""))
	settle(r)
	r.clock += 100 * time.Millisecond
	r.record(51, "192.0.2.11", 150)
	r.event(loader.Heard{Key: key, Heard: vrrp.Heard{At: r.clock}, MasterDown: true})
	r.loop()
	if got := r.state("VI_1"); got != vrrp.Backup {
		t.Errorf("MASTER_DOWN with the master alive: %v, want BACKUP", got)
	}
}

// A daemon whose loop reaches a MASTER_DOWN late — busy taking over the
// instances whose timers ran out with this one — decides as at the instant it
// got the word (At, stamped by its event reader): it takes over at once, not
// after a stall grace of an interval and Skew_Time, and says the master was
// silent for the Master_Down_Interval. A master heard meanwhile still holds it
// off. (A daemon that got the word late was stalled itself, and is graced:
// TestNoTakeoverAfterStall in tests/.)
func TestMasterDownJudgedWhenItCame(t *testing.T) {
	key := loader.Key{Ifindex: 2, VRID: 51}
	mdi := vrrp.MasterDownInterval(3, 100, 100*time.Millisecond, 3)
	// A backup of a master at 100 ms whose timer the kernel runs.
	delegated := func() (*rig, *bytes.Buffer) {
		r := newRig(t, oneInstance(100, ""))
		var log bytes.Buffer
		r.log = slog.New(slog.NewTextHandler(&log, nil))
		settle(r)
		if !r.insts[0].timedByKernel() {
			t.Fatal("the kernel does not run the backup's timer")
		}
		return r, &log
	}

	r, log := delegated()
	due := r.w.downs[key].st.Due
	r.clock = due + 100*time.Millisecond // later than Skew_Time, 60.9 ms, the word came on time
	r.event(loader.Heard{Key: key, Heard: vrrp.Heard{At: due}, MasterDown: true})
	r.loop()
	if got := r.state("VI_1"); got != vrrp.Master {
		t.Fatalf("a MASTER_DOWN handled 100 ms after it came: %v, want MASTER at once", got)
	}
	if !strings.Contains(log.String(), "silent="+mdi.String()) {
		t.Errorf("the takeover does not say the master was silent %v:\n%s", mdi, log)
	}

	r, _ = delegated()
	due = r.w.downs[key].st.Due
	r.clock = due + 100*time.Millisecond
	r.record(51, "192.0.2.11", 150) // the master spoke after the timer ran
	r.event(loader.Heard{Key: key, Heard: vrrp.Heard{At: due}, MasterDown: true})
	r.loop()
	if got := r.state("VI_1"); got != vrrp.Backup {
		t.Errorf("a MASTER_DOWN handled after the master spoke again: %v, want BACKUP", got)
	}
}
