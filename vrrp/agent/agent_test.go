package agent

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/go-cmp/cmp"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The agent's rules, run without root: the kernel, the host's addresses and
// the advert socket are fakes that write what is done to them, in order, to
// one log.

type world struct {
	ops []string
	// kernel
	states map[loader.Key]loader.InstanceState
	heard  map[loader.Key]vrrp.Heard
	// addresses
	vips map[string]bool
	// adverts: the error the next sends get
	sendErr error
	// onAdd, if set, runs as a VIP is added: a slow netlink call.
	onAdd func()
	// the kernel's Master_Down_Timers
	downs map[loader.Key]*fakeDown
	// lastReads counts LastAdvert calls
	lastReads int
}

// fakeDown is a kernel Master_Down_Timer: the entry the agent wrote, and what
// the kernel made of it (record arms it).
type fakeDown struct {
	loader.DownTimer
	st loader.DownTimerState
	// broken: bpf_timer_init fails, so no advert arms it
	broken bool
}

func (w *world) do(format string, args ...any) { w.ops = append(w.ops, fmt.Sprintf(format, args...)) }

// take returns the operations since the last take.
func (w *world) take() []string {
	ops := w.ops
	w.ops = nil
	return ops
}

type fakeKernel struct{ w *world }

func (k fakeKernel) SetInstance(key loader.Key, _ loader.Spec, st loader.InstanceState) error {
	lease := "no lease"
	if st.LeaseUntil > 0 {
		lease = "lease " + st.LeaseUntil.String()
	}
	if st.HandingOver {
		lease += " handing over"
	}
	k.w.do("kernel VRID %d %v prio %d %s", key.VRID, st.State, st.Priority, lease)
	k.w.states[key] = st
	return nil
}

func (k fakeKernel) SetInstances(ks []loader.Key, ss []loader.Spec, sts []loader.InstanceState) error {
	for i := range ks {
		k.SetInstance(ks[i], ss[i], sts[i])
	}
	return nil
}

func (k fakeKernel) State(key loader.Key) (loader.InstanceState, error) {
	st, ok := k.w.states[key]
	if !ok {
		return st, ebpf.ErrKeyNotExist
	}
	return st, nil
}

func (k fakeKernel) LastAdvert(key loader.Key) (vrrp.Heard, error) {
	k.w.lastReads++
	h, ok := k.w.heard[key]
	if !ok {
		return h, ebpf.ErrKeyNotExist
	}
	return h, nil
}

func (fakeKernel) Forget(loader.Key, []netip.Addr) error                 { return nil }
func (fakeKernel) PutVIPOf(loader.Key, netip.Addr) error                 { return nil }
func (fakeKernel) ForgetVIP(netip.Addr) error                            { return nil }
func (fakeKernel) AllowPeer(loader.Key, netip.Addr, vrrp.TTLRange) error { return nil }
func (fakeKernel) CheckAdvertAddrs(loader.Key, []netip.Addr, []netip.Addr, bool) error {
	return nil
}
func (fakeKernel) ForgetAdvertAddrs(loader.Key, []netip.Addr) error { return nil }
func (k fakeKernel) SetDownTimer(key loader.Key, t loader.DownTimer) error {
	k.w.downs[key] = &fakeDown{DownTimer: t}
	return nil
}

func (k fakeKernel) ForgetDownTimer(key loader.Key) error {
	delete(k.w.downs, key)
	return nil
}

func (k fakeKernel) DownTimerOf(key loader.Key) (loader.DownTimerState, error) {
	d := k.w.downs[key]
	if d == nil {
		return loader.DownTimerState{}, ebpf.ErrKeyNotExist
	}
	return d.st, nil
}
func (fakeKernel) SetLiveness(loader.Key, loader.LivenessSpec) error { return nil }
func (fakeKernel) LivenessOf(loader.Key) (loader.Liveness, error) {
	return loader.Liveness{}, ebpf.ErrKeyNotExist
}
func (fakeKernel) ReadHeard(ctx context.Context, _ func(loader.Heard)) error { return nil }
func (fakeKernel) Attach(int) error                                          { return nil }
func (fakeKernel) AttachFence(int) error                                     { return nil }
func (fakeKernel) PutVMAC(int, net.HardwareAddr) error                       { return nil }
func (fakeKernel) ForgetVMAC(int) error                                      { return nil }
func (fakeKernel) Detach(int) error                                          { return nil }
func (fakeKernel) Close() error                                              { return nil }
func (fakeKernel) Remove() error                                             { return nil }

type fakeAddrs struct{ w *world }

func (f fakeAddrs) add(v vip) error {
	if f.w.onAdd != nil {
		f.w.onAdd()
	}
	f.w.do("add %v", v)
	f.w.vips[v.String()] = true
	return nil
}

func (f fakeAddrs) del(v vip) error {
	if f.w.vips[v.String()] {
		f.w.do("del %v", v)
	}
	delete(f.w.vips, v.String())
	return nil
}

func (f fakeAddrs) present(v vip) bool   { return f.w.vips[v.String()] }
func (fakeAddrs) prepare(vip) error      { return nil }
func (f fakeAddrs) announce(v vip) error { f.w.do("announce %v", v.ip()); return nil }
func (fakeAddrs) release(int)            {}
func (fakeAddrs) close()                 {}

// fakeBatch is the advert socket's sendmmsg: it writes each advert's VRID and
// priority, or refuses them all with the world's sendErr.
type fakeBatch struct{ w *world }

func (b fakeBatch) WriteBatch(ms []ipv4.Message, _ int) (int, error) {
	if b.w.sendErr != nil {
		return -1, b.w.sendErr
	}
	for _, m := range ms {
		p := m.Buffers[0]
		b.w.do("advert VRID %d prio %d", p[20+1], p[20+2]) // after the IPv4 header
	}
	return len(ms), nil
}

// rig is an agent on a fake world and a fake clock.
type rig struct {
	*Agent
	w     *world
	clock time.Duration
}

// newRig builds the agent of a configuration whose instances are on eth0
// (index 2) and eth1 (index 3), from 192.0.2.12 and 198.51.100.12.
func newRig(t *testing.T, conf string) *rig {
	t.Helper()
	cfg, err := config.Parse("keepalived.conf", conf)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{states: map[loader.Key]loader.InstanceState{}, heard: map[loader.Key]vrrp.Heard{}, vips: map[string]bool{},
		downs: map[loader.Key]*fakeDown{}}
	r := &rig{w: w, clock: time.Second}
	a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler), now: func() time.Duration { return r.clock },
		dp: fakeKernel{w}, addrs: fakeAddrs{w}, byKey: map[loader.Key]*instance{}, groups: map[string][]*instance{},
		socks: map[sockKey]*rawSocket{}, groupState: map[string]vrrp.State{}, fenceOnly: map[int]bool{}, health: newHealth()}
	r.Agent = a
	ifaces := map[string]struct {
		index int
		src   netip.Addr
	}{"eth0": {2, netip.MustParseAddr("192.0.2.12")}, "eth1": {3, netip.MustParseAddr("198.51.100.12")}}
	for _, in := range cfg.Instances {
		ifc := ifaces[in.Interface]
		ifi := &net.Interface{Index: ifc.index, Name: in.Interface, MTU: 1500, HardwareAddr: net.HardwareAddr{2, 0, 0, 0, 0, byte(ifc.index)}}
		sock := a.socks[sockKey{ifindex: ifc.index}]
		if sock == nil {
			sock = &rawSocket{ifi: ifi, fd: -1, groups: map[netip.Addr]bool{}, batch: fakeBatch{w}}
			a.socks[sockKey{ifindex: ifc.index}] = sock
		}
		link := &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: in.Interface, Index: ifc.index}}
		inst := &instance{cfg: in, ifi: ifi, up: true, group: vrrp.Group4,
			key:    loader.Key{Ifindex: ifc.index, VRID: in.VRID},
			sender: &sender{sock: sock, src: ifc.src, dsts: []netip.Addr{vrrp.Group4}}}
		for _, v := range in.VIPs {
			vv, err := a.vipOf(in, v, link)
			if err != nil {
				t.Fatal(err)
			}
			inst.vips = append(inst.vips, vv)
		}
		if err := build(inst); err != nil {
			t.Fatal(err)
		}
		if err := a.adopt(inst); err != nil {
			t.Fatal(err)
		}
		a.insts = append(a.insts, inst)
		a.byKey[inst.key] = inst
		if in.SyncGroup != "" {
			a.groups[in.SyncGroup] = append(a.groups[in.SyncGroup], inst)
		}
	}
	if a.notify, err = newNotifier(cfg, a.log); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.notify.close)
	w.take()
	return r
}

// at moves the clock to t and runs what is due, as the event loop does when
// the timer fires.
//
// A backup's Master_Down_Timer fires on time on the way there, as the event
// loop's does on a host that is not stalled: a backup whose timer fires late
// takes itself for stalled (vrrp.StallGrace). stalledTo jumps.
func (r *rig) at(t time.Duration) {
	for range 100000 {
		var n time.Duration
		for _, in := range r.insts {
			if d := in.m.Deadline(); in.m.State() == vrrp.Backup && d > r.clock && d < t && (n == 0 || d < n) {
				n = d
			}
		}
		if n == 0 {
			break
		}
		r.clock = n
		r.expire()
		r.loop()
	}
	r.stalledTo(t)
}

// takeOverAt starts the rig so that its first instance's Master_Down_Timer,
// hearing no master, runs out at t, and runs it to t: it takes over then, on
// time.
func (r *rig) takeOverAt(t time.Duration) {
	c := r.insts[0].cfg
	r.clock = t - vrrp.MasterDownInterval(c.Version, c.Priority, c.Interval, c.DownTimerAdverts)
	r.start()
	r.at(t)
}

// stalledTo runs the event loop at t without running it before: the timer
// fires late by whatever was due meanwhile.
func (r *rig) stalledTo(t time.Duration) {
	r.clock = t
	r.expire()
	r.loop()
}

// loop flushes until nothing is queued, as the event loop flushes at the top
// of every turn: what one flush's outcome queued (a priority-0 advert on
// entering FAULT) goes in the next.
func (r *rig) loop() {
	for range 10 {
		r.flush()
		if len(r.queued) == 0 {
			return
		}
	}
}

// hear is an advert the kernel recorded and reported, arriving now.
func (r *rig) hear(vrid uint8, from string, prio uint8) {
	h := vrrp.Heard{Addr: netip.MustParseAddr(from), Priority: prio, Interval: 100 * time.Millisecond, At: r.clock}
	key := loader.Key{Ifindex: 2, VRID: vrid}
	r.w.heard[key] = h
	// The kernel's let_go, before the agent hears of the advert: a master
	// handing over, or beaten, loses its lease (priorities only, here).
	if st, ok := r.w.states[key]; ok && st.State == vrrp.Master && prio != 0 && (st.HandingOver || prio > st.Priority) {
		r.w.states[key] = loader.InstanceState{State: vrrp.Backup, Priority: st.Priority}
	}
	r.w.holdOff(key, h)
	r.event(loader.Heard{Key: key, Heard: h})
	r.loop()
}

func (r *rig) state(name string) vrrp.State {
	for _, in := range r.insts {
		if in.cfg.Name == name {
			return in.m.State()
		}
	}
	return vrrp.Init
}

const twoNodes = `vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority %d
    version 3
    advert_int 0.1
    %s
    virtual_ipaddress {
        192.0.2.1/24
    }
}
`

func oneInstance(prio int, extra string) string { return fmt.Sprintf(twoNodes, prio, extra) }

// Taking over: the VIP, fenced still, then the advert; once it has left, the
// kernel's instance becomes MASTER with a lease from the time before it was
// sent, so that the fence lets the VIP through, and the old master, which
// lets go on that advert, and we never answer together; then the gratuitous
// ARPs, which the fence passes only for a MASTER with a lease.
func TestTakeoverOrder(t *testing.T) {
	r := newRig(t, oneInstance(100, "garp_master_repeat 2"))
	r.start()
	r.flush()
	if diff := cmp.Diff([]string{"kernel VRID 51 BACKUP prio 100 no lease"}, r.w.take()); diff != "" {
		t.Fatalf("start (-want +got):\n%s", diff)
	}
	mdi := vrrp.MasterDownInterval(3, 100, 100*time.Millisecond, 3)
	r.at(time.Second + mdi - 1)
	if ops := r.w.take(); len(ops) != 0 {
		t.Fatalf("before Master_Down_Interval: %q", ops)
	}
	at := time.Second + mdi
	lease := at + vrrp.Lease(3, 100*time.Millisecond, 0)
	r.at(at)
	want := []string{
		"add 192.0.2.1/24 dev eth0",
		"advert VRID 51 prio 100",
		"kernel VRID 51 MASTER prio 100 lease " + lease.String(),
		"announce 192.0.2.1",
		"announce 192.0.2.1",
	}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("takeover (-want +got):\n%s", diff)
	}
	// The next advert renews the lease from its own time.
	r.at(at + 100*time.Millisecond)
	want = []string{"advert VRID 51 prio 100", "kernel VRID 51 MASTER prio 100 lease " + (lease + 100*time.Millisecond).String()}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("next advert (-want +got):\n%s", diff)
	}
}

// A takeover whose VIP add waits (netlink waits for the RTNL lock, which
// every namespace shares; 250 ms was seen beside other work) counts its first
// lease from its advert, queued after the add, not from the start of the
// takeover: the lease written before was over by then (at 10 ms adverts), and
// the fence dropped the gratuitous ARPs that followed.
func TestSlowVIPAddLeaseFromAdvert(t *testing.T) {
	r := newRig(t, oneInstance(100, "garp_master_repeat 1"))
	r.start()
	r.flush()
	r.w.take()
	const slow = 250 * time.Millisecond
	r.w.onAdd = func() { r.clock += slow }
	at := time.Second + vrrp.MasterDownInterval(3, 100, 100*time.Millisecond, 3)
	r.at(at)
	want := []string{
		"add 192.0.2.1/24 dev eth0",
		"advert VRID 51 prio 100",
		"kernel VRID 51 MASTER prio 100 lease " + (at + slow + vrrp.Lease(3, 100*time.Millisecond, 0)).String(),
		"announce 192.0.2.1",
	}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("takeover with a slow VIP add (-want +got):\n%s", diff)
	}
}

// A master whose adverts the kernel refuses is not renewed: it goes to FAULT,
// fenced before its VIP goes, and tries again after a Master_Down_Interval
// (a second at least).
func TestSendRefusedNoLease(t *testing.T) {
	r := newRig(t, oneInstance(100, ""))
	r.start()
	r.at(2 * time.Second) // master
	r.w.take()
	r.w.sendErr = unix.EPERM
	r.at(2*time.Second + 100*time.Millisecond)
	ops := r.w.take()
	for _, op := range ops {
		if strings.HasPrefix(op, "kernel VRID 51 MASTER") {
			t.Errorf("lease renewed by an advert that did not leave: %q", ops)
		}
	}
	if r.state("VI_1") != vrrp.Fault {
		t.Fatalf("state %v after a refused advert, want FAULT (ops %q)", r.state("VI_1"), ops)
	}
	fence, del := slices.Index(ops, "kernel VRID 51 FAULT prio 100 no lease"), slices.Index(ops, "del 192.0.2.1/24 dev eth0")
	if fence < 0 || del < 0 || fence > del {
		t.Errorf("want the fence closed, then the VIP removed: %q", ops)
	}
	// Still refused when it tries again: FAULT again; allowed: back.
	r.at(3*time.Second + 100*time.Millisecond)
	if r.state("VI_1") != vrrp.Backup {
		t.Fatalf("state %v after the hold, want BACKUP to try again", r.state("VI_1"))
	}
	r.w.sendErr = nil
	mdi := vrrp.MasterDownInterval(3, 100, 100*time.Millisecond, 3)
	r.at(3*time.Second + 100*time.Millisecond + mdi)
	if r.state("VI_1") != vrrp.Master {
		t.Errorf("state %v once sends work, want MASTER", r.state("VI_1"))
	}
}

// A full queue (ENOBUFS) may pass: a master stays master for as many refused
// adverts as a backup misses before it takes over, but none renews its lease,
// so the fence closes no later than the backup takes the VIP.
func TestSendQueueFullNoLease(t *testing.T) {
	r := newRig(t, oneInstance(100, ""))
	r.start()
	r.at(2 * time.Second)
	r.w.take()
	r.w.sendErr = unix.ENOBUFS
	for i := 1; i < transientSendRun; i++ {
		r.at(2*time.Second + time.Duration(i)*100*time.Millisecond)
		if r.state("VI_1") != vrrp.Master {
			t.Fatalf("FAULT after %d refused adverts, want MASTER until %d", i, transientSendRun)
		}
	}
	if ops := r.w.take(); len(ops) != 0 {
		t.Errorf("refused adverts renewed the lease or changed something: %q", ops)
	}
	r.at(2*time.Second + transientSendRun*100*time.Millisecond)
	if r.state("VI_1") != vrrp.Fault {
		t.Errorf("state %v after %d refused adverts, want FAULT", r.state("VI_1"), transientSendRun)
	}
}

// A master hearing a higher priority steps down: fenced, then the VIP goes,
// and it sends nothing.
func TestStepDownFencesFirst(t *testing.T) {
	r := newRig(t, oneInstance(100, ""))
	r.start()
	r.at(2 * time.Second)
	r.w.take()
	r.hear(51, "192.0.2.13", 150)
	want := []string{"kernel VRID 51 BACKUP prio 100 no lease", "del 192.0.2.1/24 dev eth0"}
	if diff := cmp.Diff(want, r.w.take()); diff != "" {
		t.Errorf("step down (-want +got):\n%s", diff)
	}
}

// Preemption: a backup of higher priority hearing a lower master takes over
// when its Master_Down_Interval runs out, though adverts keep coming; with
// nopreempt it stays backup while they come.
func TestPreemption(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  vrrp.State
	}{{"", vrrp.Master}, {"nopreempt", vrrp.Backup}} {
		t.Run(tc.want.String(), func(t *testing.T) {
			r := newRig(t, oneInstance(150, tc.extra))
			r.start()
			for i := range 10 {
				r.clock = time.Second + time.Duration(i)*100*time.Millisecond
				r.hear(51, "192.0.2.11", 100)
				r.at(r.clock)
			}
			if got := r.state("VI_1"); got != tc.want {
				t.Errorf("after a second of adverts from a lower master: %v, want %v", got, tc.want)
			}
		})
	}
}

// syncPair is a sync group of two instances, on eth0 and eth1.
const syncPair = `vrrp_sync_group G {
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
    interface eth1
    virtual_router_id 52
    priority 100
    version 3
    advert_int 0.1
    virtual_ipaddress {
        198.51.100.1/24
    }
}
`

// A sync group: one member's interface goes down, all members go to FAULT;
// it comes back, they leave FAULT together.
func TestSyncGroupFault(t *testing.T) {
	r := newRig(t, syncPair)
	r.start()
	r.running = true
	r.at(2 * time.Second)
	if r.state("VI_1") != vrrp.Master || r.state("VI_2") != vrrp.Master {
		t.Fatalf("states %v %v, want both MASTER", r.state("VI_1"), r.state("VI_2"))
	}
	r.link(linkState{index: 3, name: "eth1", up: false})
	r.flush()
	if r.state("VI_1") != vrrp.Fault || r.state("VI_2") != vrrp.Fault {
		t.Errorf("after eth1 went down: %v %v, want both FAULT", r.state("VI_1"), r.state("VI_2"))
	}
	r.link(linkState{index: 3, name: "eth1", up: true})
	r.flush()
	if r.state("VI_1") != vrrp.Backup || r.state("VI_2") != vrrp.Backup {
		t.Errorf("after eth1 came back: %v %v, want both BACKUP", r.state("VI_1"), r.state("VI_2"))
	}
}

// Restarted within the lease the previous run left, an instance resumes as
// master and keeps its VIP; past it, a VIP of ours left behind is removed.
func TestAdoptLease(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lease time.Duration
		want  bool
	}{{"within", 2 * time.Second, true}, {"past", 500 * time.Millisecond, false}} {
		t.Run(tc.name, func(t *testing.T) {
			w := &world{states: map[loader.Key]loader.InstanceState{}, heard: map[loader.Key]vrrp.Heard{}, vips: map[string]bool{"192.0.2.1/24 dev eth0": true},
				downs: map[loader.Key]*fakeDown{}}
			w.states[loader.Key{Ifindex: 2, VRID: 51}] = loader.InstanceState{State: vrrp.Master, Priority: 100, LeaseUntil: tc.lease}
			cfg, _ := config.Parse("keepalived.conf", oneInstance(100, ""))
			a := &Agent{cfg: cfg, log: slog.New(slog.DiscardHandler), now: func() time.Duration { return time.Second }, dp: fakeKernel{w}, addrs: fakeAddrs{w}}
			inst := &instance{cfg: cfg.Instances[0], ifi: &net.Interface{Index: 2, Name: "eth0", MTU: 1500}, key: loader.Key{Ifindex: 2, VRID: 51},
				sender: &sender{src: netip.MustParseAddr("192.0.2.12")}}
			v, _ := a.vipOf(inst.cfg, inst.cfg.VIPs[0], &netlink.Dummy{LinkAttrs: netlink.LinkAttrs{Name: "eth0", Index: 2}})
			inst.vips = []vip{v}
			if err := build(inst); err != nil {
				t.Fatal(err)
			}
			if err := a.adopt(inst); err != nil {
				t.Fatal(err)
			}
			if inst.resume != tc.want || w.vips["192.0.2.1/24 dev eth0"] != tc.want {
				t.Errorf("resume %v, VIP kept %v; want %v (ops %q)", inst.resume, w.vips["192.0.2.1/24 dev eth0"], tc.want, w.ops)
			}
		})
	}
}

// Notify lines come in the order of the transitions, a group's after all its
// members are there: the FIFO keepalived's readers follow.
func TestNotifyOrder(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "notify.fifo")
	r := newRig(t, "global_defs {\n    notify_fifo "+fifo+"\n}\n"+syncPair)
	f, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.start()
	r.running = true
	r.at(2 * time.Second)
	r.link(linkState{index: 2, name: "eth0", up: false})
	r.loop()
	want := []string{
		`INSTANCE "VI_1" BACKUP 100`,
		`INSTANCE "VI_2" BACKUP 100`,
		`GROUP "G" BACKUP 0`,
		`INSTANCE "VI_1" MASTER 100`, // its Master_Down_Interval ran out
		`INSTANCE "VI_2" MASTER 100`, // forced along by its group
		`GROUP "G" MASTER 0`,
		`INSTANCE "VI_1" FAULT 100`,
		`INSTANCE "VI_2" FAULT 100`,
		`GROUP "G" FAULT 0`,
	}
	var got []string
	deadline := time.Now().Add(2 * time.Second)
	buf := make([]byte, 4096)
	var text string
	for len(got) < len(want) && time.Now().Before(deadline) {
		n, _ := f.Read(buf)
		text += string(buf[:max(n, 0)])
		got = strings.Split(strings.TrimSpace(text), "\n")
		time.Sleep(5 * time.Millisecond)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("notify FIFO (-want +got):\n%s", diff)
	}
}

// A backup whose event loop ran a second late — the host stalled, the
// master's daemon with it — gives the master one more advert interval and
// Skew_Time from then: the master's advert that comes after the stall holds
// it; if none comes, it takes over at the end of that grace.
func TestStalledBackupWaitsOneInterval(t *testing.T) {
	for _, tc := range []struct {
		name  string
		heard bool
		want  vrrp.State
	}{{"master advertises after the stall", true, vrrp.Backup}, {"master gone", false, vrrp.Master}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, oneInstance(100, ""))
			r.start()
			r.clock = 100 * time.Millisecond
			r.hear(51, "192.0.2.13", 150)
			r.stalledTo(1500 * time.Millisecond)
			if got := r.state("VI_1"); got != vrrp.Backup {
				t.Fatalf("after a stall: %v, want BACKUP", got)
			}
			if tc.heard {
				r.clock = 1502 * time.Millisecond
				r.hear(51, "192.0.2.13", 150)
			}
			r.at(1500*time.Millisecond + 100*time.Millisecond + vrrp.SkewTime(3, 100, 100*time.Millisecond))
			if got := r.state("VI_1"); got != tc.want {
				t.Errorf("one interval and Skew_Time after the stall: %v, want %v", got, tc.want)
			}
		})
	}
}
