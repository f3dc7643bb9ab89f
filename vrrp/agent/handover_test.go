package agent

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/vrrp"
)

// A master that stops resigns with priority 0 but keeps its lease and its VIP,
// marked as handing over, until its successor's first advert: the kernel lets
// go on it, and only then is the VIP removed.
func TestStopHandsOver(t *testing.T) {
	r := newRig(t, oneInstance(150, ""))
	r.start()
	r.at(2 * time.Second) // master, lease renewed from 2 s
	r.w.take()
	lease := 2*time.Second + vrrp.Lease(3, 100*time.Millisecond, 0)
	in := r.insts[0]
	r.apply(in, in.m.Stop(r.clock))
	r.loop()
	want := []string{"kernel VRID 51 MASTER prio 150 lease " + lease.String() + " handing over", "advert VRID 51 prio 0"}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Fatalf("stop (-want +got):\n%s", diff)
	}
	st, _ := r.dp.State(in.key)
	if st.State != vrrp.Master || !st.HandingOver || !r.w.vips["192.0.2.1/24 dev eth0"] {
		t.Fatalf("after the priority-0 advert: kernel %+v, VIP %v; want MASTER handing over, the VIP kept", st, r.w.vips)
	}
	// The backup takes over after its Skew_Time; its first advert ends the
	// hand-over.
	r.clock += 60 * time.Millisecond
	r.hear(51, "192.0.2.13", 100)
	want = []string{"kernel VRID 51 INIT prio 150 no lease", "del 192.0.2.1/24 dev eth0"}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("successor heard (-want +got):\n%s", diff)
	}
}

// No successor comes: the VIP goes when the lease ends.
func TestStopHandOverEndsWithLease(t *testing.T) {
	r := newRig(t, oneInstance(150, ""))
	r.start()
	r.at(2 * time.Second)
	lease := 2*time.Second + vrrp.Lease(3, 100*time.Millisecond, 0)
	in := r.insts[0]
	r.apply(in, in.m.Stop(r.clock))
	r.loop()
	r.at(lease - 1)
	if !r.w.vips["192.0.2.1/24 dev eth0"] {
		t.Fatal("VIP removed before the lease ended")
	}
	r.w.take()
	r.at(lease)
	want := []string{"kernel VRID 51 INIT prio 150 no lease", "del 192.0.2.1/24 dev eth0"}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("lease ended (-want +got):\n%s", diff)
	}
}
