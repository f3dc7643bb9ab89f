package loader

import (
	"net/netip"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/xvrrp/xvrrp/vrrp"
)

// downInstance puts a BACKUP instance of our priority prio, with interval cs
// centiseconds (ours in v2; v3 accepts any), recorded in XDP, and hands its
// Master_Down_Timer to the kernel.
func downInstance(t testing.TB, d *Datapath, k InstanceKey, version, prio uint8, cs uint16, state uint8) {
	t.Helper()
	in := Instance{Version: version, State: state, Priority: prio, IntervalCs: cs,
		MinIntervalCs: 1, MaxIntervalCs: 4095, Flags: FlagRecordInXDP,
		// A master's daemon renews: not stalled, let_go keeps its lease.
		RenewedNs: monotonicNow(t) + uint64(time.Hour)}
	if version == 2 {
		in.MinIntervalCs, in.MaxIntervalCs = cs, cs
	}
	if err := d.PutInstance(k, in); err != nil {
		t.Fatal(err)
	}
}

func runAdvert(t testing.TB, d *Datapath, f []byte) {
	t.Helper()
	if ret, err := d.XDP().Run(&ebpf.RunOptions{Data: f}); err != nil || ret != xdpPass {
		t.Fatalf("run: %d, %v", ret, err)
	}
}

// armedFor runs an advert and says for how long past it the kernel armed the
// instance's Master_Down_Timer, or false when the advert did not arm it.
func armedFor(t testing.TB, d *Datapath, k InstanceKey, f []byte) (time.Duration, bool) {
	t.Helper()
	runAdvert(t, d, f)
	p, err := d.Peer(k)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d.DownTimerOf(keyOf(k))
	if err != nil {
		t.Fatal(err)
	}
	if st.Heard != time.Duration(p.LastSeenNs) {
		return 0, false
	}
	return st.Due - st.Heard, true
}

// TestKernelMasterDownMatchesGo runs the kernel's Master_Down_Interval
// (master_down_ns, through xdp_vrrp and hold_off) against
// vrrp.MasterDownInterval for every interval and priority a configuration
// allows, in both versions (down_timer_adverts going round 1–100 with the
// priority), then every down_timer_adverts at every priority for the
// shortest, the longest and two other intervals of each version.
//
// Entries are written per down_timer_adverts, not per advert: each write
// frees a timer, and bpf_timer_init fails for want of memory when the kernel
// has many to free (a few hundred writes in a row here). The daemon writes an
// entry per instance at start and reload, and times an instance itself until
// the kernel says it armed the timer.
func TestKernelMasterDownMatchesGo(t *testing.T) {
	d := newDatapath(t)
	k := key(60, FamilyIPv4)
	mismatches, retried := 0, 0
	downAdverts := func(n int) {
		if err := d.SetDownTimer(keyOf(k), DownTimer{DownAdverts: n}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(version, prio uint8, cs uint16, adverts int) {
		iv := time.Duration(cs) * vrrp.IntervalUnitV3
		a := vrrp.Advert{Version: version, VRID: 60, Priority: 255, Interval: iv, Addrs: []netip.Addr{vip4}}
		f := advert(t, a, src4, vrrp.Group4, 255)
		got, ok := armedFor(t, d, k, f)
		for try := 0; !ok && try < 100 && initFailed(t, d, k); try++ {
			retried++ // the next advert tries again: so does the test
			time.Sleep(time.Millisecond)
			got, ok = armedFor(t, d, k, f)
		}
		want := vrrp.MasterDownInterval(version, prio, iv, adverts)
		if !ok || got != want {
			if mismatches++; mismatches <= 10 {
				t.Errorf("v%d priority %d interval %v down_timer_adverts %d: kernel %v (armed %v), Go %v",
					version, prio, iv, adverts, got, ok, want)
			}
		}
	}
	for prio := 1; prio <= 255; prio++ {
		adverts := 1 + prio%100
		downAdverts(adverts)
		downInstance(t, d, k, 3, uint8(prio), 100, StateBackup)
		for cs := 1; cs <= 4095; cs++ {
			check(3, uint8(prio), uint16(cs), adverts)
		}
		for sec := 1; sec <= 255; sec++ { // v2 counts seconds, 1–255
			downInstance(t, d, k, 2, uint8(prio), uint16(sec*100), StateBackup)
			check(2, uint8(prio), uint16(sec*100), adverts)
		}
	}
	for adverts := 1; adverts <= 100; adverts++ {
		downAdverts(adverts)
		for prio := 1; prio <= 255; prio++ {
			for _, cs := range []uint16{1, 7, 100, 4095} {
				downInstance(t, d, k, 3, uint8(prio), cs, StateBackup)
				check(3, uint8(prio), cs, adverts)
			}
			for _, cs := range []uint16{100, 300, 25500} {
				downInstance(t, d, k, 2, uint8(prio), cs, StateBackup)
				check(2, uint8(prio), cs, adverts)
			}
		}
	}
	if mismatches > 0 {
		t.Errorf("%d mismatches", mismatches)
	}
	t.Logf("%d adverts found bpf_timer_init failing and were sent again", retried)
}

func initFailed(t testing.TB, d *Datapath, k InstanceKey) bool {
	st, err := d.DownTimerOf(keyOf(k))
	if err != nil {
		t.Fatal(err)
	}
	return st.InitErrors > 0 && st.Heard == 0
}

// armsOn writes a fresh entry, runs one advert of priority adv and says
// whether the kernel armed the timer on it.
func armsOn(t *testing.T, d *Datapath, k InstanceKey, adv uint8, noPreempt bool) bool {
	t.Helper()
	if err := d.SetDownTimer(keyOf(k), DownTimer{NoPreempt: noPreempt}); err != nil {
		t.Fatal(err)
	}
	a := vrrp.Advert{Version: 3, VRID: k.Vrid, Priority: adv, Interval: time.Second, Addrs: []netip.Addr{vip4}}
	f := advert(t, a, src4, vrrp.Group4, 255)
	_, ok := armedFor(t, d, k, f)
	for try := 0; !ok && try < 100 && initFailed(t, d, k); try++ {
		time.Sleep(time.Millisecond)
		_, ok = armedFor(t, d, k, f)
	}
	return ok
}

// TestKernelHoldsOffAsMachine: an advert re-arms the kernel's timer exactly
// when it restarts vrrp.Machine's Master_Down_Timer (preempt_delay aside,
// which the kernel is never given), and never for a master or in FAULT.
func TestKernelHoldsOffAsMachine(t *testing.T) {
	d := newDatapath(t)
	k := key(61, FamilyIPv4)
	prios := []uint8{1, 2, 99, 100, 101, 200, 254}
	for _, noPreempt := range []bool{false, true} {
		for _, ours := range prios {
			for _, adv := range append([]uint8{0, 255}, prios...) {
				m := vrrp.NewMachine(vrrp.Params{Version: 3, Priority: ours, Interval: time.Second,
					Addr: self, NoPreempt: noPreempt})
				m.Start(0)
				h := vrrp.Heard{Addr: src4, Priority: adv, Interval: time.Second, At: time.Hour}
				m.Advert(time.Hour, h)
				want := m.Deadline() == h.At+vrrp.MasterDownInterval(3, ours, time.Second, 3)
				downInstance(t, d, k, 3, ours, 100, StateBackup)
				if got := armsOn(t, d, k, adv, noPreempt); got != want {
					t.Errorf("nopreempt %v, priority %d, advert of %d: kernel arms %v, machine restarts %v",
						noPreempt, ours, adv, got, want)
				}
			}
		}
	}
	// An advert that does not beat a master (one that does ends its lease
	// in let_go, which leaves the kernel's instance a BACKUP, held off by it,
	// as the machine's toBackup is).
	for _, st := range []uint8{StateMaster, StateFault, StateInit} {
		downInstance(t, d, k, 3, 100, 100, st)
		if armsOn(t, d, k, 50, true) {
			t.Errorf("kernel state %d: armed a Master_Down_Timer", st)
		}
	}
}

// TestKernelMasterDownFires: adverts well inside Master_Down_Interval keep
// the kernel's timer from running out; when they stop, it runs out and
// pushes one MASTER_DOWN event for the instance, due Master_Down_Interval
// after the last advert.
func TestKernelMasterDownFires(t *testing.T) {
	d := newDatapath(t)
	k := key(62, FamilyIPv4)
	r, err := d.Events()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	downInstance(t, d, k, 3, 100, 100, StateBackup)
	// 200 ms adverts: Master_Down_Interval is 3 × 200 ms + Skew_Time, 678 ms.
	const iv = 200 * time.Millisecond
	if !armsOn(t, d, k, 150, false) {
		t.Fatal("not armed")
	}
	a := vrrp.Advert{Version: 3, VRID: 62, Priority: 150, Interval: iv, Addrs: []netip.Addr{vip4}}
	f := advert(t, a, src4, vrrp.Group4, 255)
	// The first advert of another source raised NEW_SOURCE: read it.
	r.SetDeadline(time.Now().Add(time.Second))
	if e, err := r.Read(); err != nil || e.Kind != EventNewSource {
		t.Fatalf("first event %+v, %v", e, err)
	}
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); {
		runAdvert(t, d, f)
		time.Sleep(iv / 10)
	}
	r.SetDeadline(time.Now().Add(time.Millisecond))
	if e, err := r.Read(); err == nil {
		t.Fatalf("event while adverts came every %v: %+v", iv/10, e)
	}
	p, err := d.Peer(k)
	if err != nil {
		t.Fatal(err)
	}
	r.SetDeadline(time.Now().Add(10 * time.Second))
	e, err := r.Read()
	if err != nil {
		t.Fatalf("no MASTER_DOWN after the adverts stopped: %v", err)
	}
	want := time.Duration(p.LastSeenNs) + vrrp.MasterDownInterval(3, 100, iv, 3)
	if e.Kind != EventMasterDown || keyOf(e.Key) != keyOf(k) || time.Duration(e.TimeNs) != want {
		t.Errorf("event %+v, want MASTER_DOWN for %+v due %v", e, k, want)
	}
	if now := time.Duration(monotonicNow(t)); now < want {
		t.Errorf("MASTER_DOWN read at %v, before it was due (%v)", now, want)
	}
	st, err := d.DownTimerOf(keyOf(k))
	if err != nil || st.Fired != 1 {
		t.Errorf("down timer %+v, %v: want fired once", st, err)
	}
}
