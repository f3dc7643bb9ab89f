package tests

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// keepalivedVRID52 is a keepalived instance beside xvrrp's VRID 51 on the same
// interface, as during a migration.
func keepalivedVRID52(prio int) string {
	return fmt.Sprintf(`global_defs {
    vrrp_garp_master_delay 0
}
vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority %d
    version 3
    advert_int 0.05
    virtual_ipaddress {
        192.0.2.2/24
    }
}
`, prio)
}

// TestForeignVRIDBesideKeepalived: keepalived runs VRID 52 and xvrrp VRID 51 on
// the same two hosts at once. xvrrp's XDP passes keepalived's adverts (another
// router's VRID) to its socket and counts them as foreign, so both pairs elect
// one master, both fail over when the master's link is cut, and both preempt
// back. Before, XDP dropped VRID 52's adverts and both keepalived nodes became
// master.
func TestForeignVRIDBesideKeepalived(t *testing.T) {
	labtest.Require(t, "keepalived")
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	vip52 := netip.MustParseAddr("192.0.2.2")
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
	}
	start := func(h *lab.Host, prio int) (x, k *lab.Proc) {
		xv, err := h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: prio}))
		if err != nil {
			t.Fatal(err)
		}
		ka, err := h.StartKeepalived(keepalivedVRID52(prio))
		if err != nil {
			t.Fatal(err)
		}
		return xv.Proc, ka.Proc
	}
	wait := func(p *lab.Proc, s string, n int) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for strings.Count(p.Output(), s) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no %d× %q:\n%s", p.Host.Name, n, s, p.Output())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	x1, k1 := start(h1, 150)
	wait(x1, "(VI_1) Entering MASTER STATE", 1)
	wait(k1, "(VI_2) Entering MASTER STATE", 1)
	x2, k2 := start(h2, 100)
	wait(x2, "(VI_1) Entering BACKUP STATE", 1)
	wait(k2, "(VI_2) Entering BACKUP STATE", 1)

	p51, err := l.Client.StartProber(vip4, 10*time.Millisecond, 6000)
	if err != nil {
		t.Fatal(err)
	}
	defer p51.Stop()
	p52, err := l.Client.StartProber(vip52, 10*time.Millisecond, 6000)
	if err != nil {
		t.Fatal(err)
	}
	defer p52.Stop()
	answeredBy(t, p51, "h1")
	answeredBy(t, p52, "h1")
	time.Sleep(3 * time.Second / 2)
	for _, p := range []*lab.Proc{x2, k2} {
		if strings.Contains(p.Output(), "Entering MASTER STATE") {
			t.Fatalf("a backup became master while the master ran:\n%s", p.Output())
		}
	}

	h1.Cut()
	wait(x2, "(VI_1) Entering MASTER STATE", 1)
	wait(k2, "(VI_2) Entering MASTER STATE", 1)
	answeredBy(t, p51, "h2")
	answeredBy(t, p52, "h2")
	h1.Restore()
	wait(x1, "(VI_1) Entering MASTER STATE", 2)
	wait(k1, "(VI_2) Entering MASTER STATE", 2)
	wait(x2, "(VI_1) Entering BACKUP STATE", 2)
	wait(k2, "(VI_2) Entering BACKUP STATE", 2)
	answeredBy(t, p51, "h1")
	answeredBy(t, p52, "h1")
	for _, p := range []*lab.Prober{p51, p52} {
		for _, a := range p.Answers() {
			if a.Also != "" {
				t.Errorf("probe at %v answered by both %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
			}
		}
	}

	// h2 heard h1's keepalived all along, through its XDP, as foreign.
	pinDir, _ := h2.XvrrpDirs()
	dp, err := loader.Load(loader.Options{PinDir: pinDir, Observe: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := dp.Counters()
	dp.Close()
	if err != nil {
		t.Fatal(err)
	}
	if c[vrrp.ReasonForeign] == 0 || c[vrrp.ReasonValid] == 0 {
		t.Errorf("h2 counted %d foreign and %d valid adverts, want both > 0: %v", c[vrrp.ReasonForeign], c[vrrp.ReasonValid], c)
	}
}

// counter is a TC program that counts the packets it sees and gives no verdict,
// so that it can stand anywhere in a chain.
func counter(t *testing.T) (*ebpf.Program, *ebpf.Map) {
	t.Helper()
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.StoreImm(asm.RFP, -4, 0, asm.Word),
			asm.LoadMapPtr(asm.R1, m.FD()),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, -4),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, "out"),
			asm.Mov.Imm(asm.R1, 1),
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
			asm.Mov.Imm(asm.R0, -1).WithSymbol("out"), // TCX_NEXT, TC_ACT_UNSPEC
			asm.Return(),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	return prog, m
}

func count(t *testing.T, m *ebpf.Map) uint64 {
	t.Helper()
	var n uint64
	if err := m.Lookup(uint32(0), &n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestProgramAfterFence: a TCX program attached after the fence, or a cls_bpf
// filter of lower priority under the same clsact qdisc, still sees the traffic
// the fence lets through: the fence gives "no verdict" instead of ending the
// chain with TC_ACT_OK.
func TestProgramAfterFence(t *testing.T) {
	for _, mode := range []struct {
		name string
		mode loader.TCMode
	}{{"tcx", loader.TCX}, {"clsact", loader.TCClsact}} {
		t.Run(mode.name, func(t *testing.T) {
			r := newFenceRig(t)
			r.load(mode.mode)
			t.Cleanup(func() { r.dp.Close() })
			r.own(loader.StateMaster, time.Hour)
			prog, m := counter(t)
			err := r.h2.Do(func() error {
				if mode.mode == loader.TCX {
					l, err := link.AttachTCX(link.TCXOptions{Interface: r.ifindex, Program: prog,
						Attach: ebpf.AttachTCXIngress, Anchor: link.AfterProgram(r.dp.FenceIngress())})
					if err != nil {
						return err
					}
					t.Cleanup(func() { l.Close() })
					return nil
				}
				// After xvrrp's filter (priority 112) under its clsact qdisc.
				return netlink.FilterAdd(&netlink.BpfFilter{
					FilterAttrs: netlink.FilterAttrs{LinkIndex: r.ifindex, Parent: netlink.HANDLE_MIN_INGRESS,
						Handle: 1, Priority: 200, Protocol: unix.ETH_P_ALL},
					Fd: prog.FD(), Name: "counter", DirectAction: true,
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if shown := r.shown(); !strings.Contains(shown, "counter") && mode.mode == loader.TCClsact {
				t.Fatalf("counter filter not attached:\n%s", shown)
			}
			before := count(t, m)
			if !r.pings() {
				t.Fatal("the VIP did not answer while its instance was MASTER with a lease")
			}
			if count(t, m) == before {
				t.Errorf("the program after the fence saw no packet (%s)", r.shown())
			}
		})
	}
}

// TestFenceFirstInChain: a TCX program that ends the chain (TC_ACT_OK),
// attached to the backup's interface before xvrrp starts, must not come before
// the fence: adverts are recorded by the fence's ingress, so the backup would
// hear nothing and take over from a live master, and VIP traffic would pass
// unfenced. xvrrp attaches its fence at the head of the chain.
func TestFenceFirstInChain(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SchedCLS, License: "GPL",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}, // TC_ACT_OK: ends the chain
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prog.Close() })
	err = h2.Do(func() error {
		ifi, err := net.InterfaceByName("eth0")
		if err != nil {
			return err
		}
		l, err := link.AttachTCX(link.TCXOptions{Interface: ifi.Index, Program: prog, Attach: ebpf.AttachTCXIngress, Anchor: link.Head()})
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	time.Sleep(500 * time.Millisecond) // several Master_Down_Intervals at 50 ms
	if n := countIn(x2.Proc, "Entering MASTER STATE"); n != 0 {
		t.Errorf("the backup took over %d times from a live master:\n%s", n, x2.Output())
	}
}
