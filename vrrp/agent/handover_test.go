package agent

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/xvrrp/xvrrp/loader"
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

// A sync group steps down: the member beaten by a higher priority is fenced at
// once (the kernel let go on that advert), the member that follows it hands
// over and keeps its VIP until its own successor's first advert.
func TestSyncGroupFollowerHandsOver(t *testing.T) {
	r := newRig(t, `vrrp_sync_group G {
    group {
        VI_1
        VI_2
    }
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority 100
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority 100
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.2/24
    }
}
`)
	r.start()
	r.running = true
	r.at(2 * time.Second)
	if r.state("VI_1") != vrrp.Master || r.state("VI_2") != vrrp.Master {
		t.Fatalf("states %v %v, want both MASTER", r.state("VI_1"), r.state("VI_2"))
	}
	r.w.take()
	lease := 2*time.Second + vrrp.Lease(3, 100*time.Millisecond, 0)
	r.hear(51, "192.0.2.13", 150)
	want := []string{
		"kernel VRID 51 BACKUP prio 100 no lease", "del 192.0.2.1/24 dev eth0",
		"kernel VRID 52 MASTER prio 100 lease " + lease.String() + " handing over",
	}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Fatalf("VI_1 beaten (-want +got):\n%s", diff)
	}
	if r.state("VI_2") != vrrp.Backup || !r.w.vips["192.0.2.2/24 dev eth0"] {
		t.Fatalf("VI_2 %v, VIPs %v: want BACKUP keeping its VIP", r.state("VI_2"), r.w.vips)
	}
	r.hear(52, "192.0.2.13", 150)
	want = []string{"kernel VRID 52 BACKUP prio 100 no lease", "del 192.0.2.2/24 dev eth0"}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("VI_2's successor heard (-want +got):\n%s", diff)
	}
}

// A fault during a hand-over ends it: fenced at once, the VIP removed.
func TestFaultEndsHandOver(t *testing.T) {
	r := newRig(t, oneInstance(150, ""))
	r.start()
	r.running = true
	r.at(2 * time.Second)
	in := r.insts[0]
	r.apply(in, in.m.Force(r.clock, vrrp.Backup, "test"))
	r.loop()
	r.w.take()
	r.apply(in, in.m.SetFault(r.clock, true, "test"))
	r.loop()
	want := []string{"kernel VRID 51 FAULT prio 150 no lease", "del 192.0.2.1/24 dev eth0"}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("fault while handing over (-want +got):\n%s", diff)
	}
}

// A master that was frozen wakes with its lease gone (the kernel let go when
// the backup took over) and hears the backup's lower priority: its advert
// leaves and renews the lease before its gratuitous ARPs, which the fence
// would drop otherwise.
func TestWokenMasterRenewsBeforeARP(t *testing.T) {
	r := newRig(t, oneInstance(150, ""))
	r.start()
	r.at(2 * time.Second)
	in := r.insts[0]
	r.w.states[in.key] = loader.InstanceState{State: vrrp.Backup, Priority: 150} // let go while frozen
	r.clock += time.Second
	r.w.take()
	r.hear(51, "192.0.2.13", 100)
	ops := r.w.take()
	renewed, announced := slices.Index(ops, "kernel VRID 51 MASTER prio 150 lease "+(r.clock+vrrp.Lease(3, 100*time.Millisecond, 0)).String()), slices.Index(ops, "announce 192.0.2.1")
	if renewed < 0 || announced < 0 || announced < renewed {
		t.Errorf("want the lease renewed, then gratuitous ARPs: %q", ops)
	}
}
