package tests

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp/agent"
)

// fenceRig is h2 of a two-host lab carrying the VIP 192.0.2.1 with the datapath
// attached, and h1 pinging it.
type fenceRig struct {
	t       *testing.T
	h1, h2  *lab.Host
	pinDir  string
	ifindex int
	dp      *loader.Datapath
	log     bytes.Buffer
}

var fenceVIP = netip.MustParseAddr("192.0.2.1")

const fencePort = 8080

func newFenceRig(t *testing.T) *fenceRig {
	l := labtest.New(t, lab.Options{Hosts: 2}, "bpftool", "tc")
	r := &fenceRig{t: t, h1: l.Hosts[0], h2: l.Hosts[1]}
	r.pinDir = fmt.Sprintf("/sys/fs/bpf/xvrrp-test-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() { os.RemoveAll(r.pinDir) })
	err := r.h2.Netlink(func(h *netlink.Handle) error {
		lnk, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		r.ifindex = lnk.Attrs().Index
		return h.AddrAdd(lnk, &netlink.Addr{IPNet: &net.IPNet{IP: fenceVIP.AsSlice(), Mask: net.CIDRMask(32, 32)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	var ln net.Listener
	err = r.h2.Do(func() (err error) {
		ln, err = net.Listen("tcp", netip.AddrPortFrom(fenceVIP, fencePort).String())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return r
}

func (r *fenceRig) load(mode loader.TCMode) {
	r.t.Helper()
	err := r.h2.Do(func() (err error) {
		logger := slog.New(slog.NewTextHandler(&r.log, nil))
		if r.dp, err = loader.Load(loader.Options{PinDir: r.pinDir, TC: mode, Logger: logger}); err != nil {
			return err
		}
		return r.dp.Attach(r.ifindex)
	})
	if err != nil {
		r.t.Fatal(err)
	}
}

func (r *fenceRig) key() loader.InstanceKey {
	return loader.InstanceKey{Ifindex: uint32(r.ifindex), Vrid: 51, Family: loader.FamilyIPv4}
}

// own puts the VIP in the maps, its instance in state with a lease of lease.
func (r *fenceRig) own(state uint8, lease time.Duration) {
	r.t.Helper()
	inst := loader.Instance{Version: 3, State: state, MinIntervalCs: 1, MaxIntervalCs: 4095,
		LeaseUntilNs: uint64(agent.Monotonic() + lease)}
	vk := loader.VIPKey{Family: loader.FamilyIPv4}
	copy(vk.Addr[:], fenceVIP.AsSlice())
	if err := r.dp.PutInstance(r.key(), inst); err != nil {
		r.t.Fatal(err)
	}
	if err := r.dp.PutVIP(vk, r.key()); err != nil {
		r.t.Fatal(err)
	}
}

// pings reports whether h1 can open a TCP connection to the VIP on h2.
func (r *fenceRig) pings() bool {
	err := r.h1.Do(func() error {
		c, err := net.DialTimeout("tcp", netip.AddrPortFrom(fenceVIP, fencePort).String(), time.Second)
		if err == nil {
			c.Close()
		}
		return err
	})
	return err == nil
}

// shown describes what is attached to h2's eth0: XDP as ip-link shows it, TCX
// programs by name (bpftool 7.1 does not list TCX), tc's filters and qdiscs.
func (r *fenceRig) shown() string {
	return attached(r.h2, r.ifindex)
}

func (r *fenceRig) fenced() uint64 {
	c, err := r.dp.Counters()
	if err != nil {
		r.t.Fatal(err)
	}
	return c[loader.CounterFencedIngress] + c[loader.CounterFencedEgress]
}

// TestFenceMechanisms fences a VIP with TCX and with the clsact + cls_bpf
// fallback, switches between them on a running interface, and removes them.
func TestFenceMechanisms(t *testing.T) {
	r := newFenceRig(t)
	for _, m := range []struct {
		mode  loader.TCMode
		name  string
		shows string // in bpftool net show
		lacks string
	}{
		{loader.TCClsact, "clsact", "handle 0x1 tc_fence_ingress direct-action", "tcx/"},
		{loader.TCX, "tcx", "tcx/ingress tc_fence_ingress", "clsact"},
		{loader.TCClsact, "clsact again", "handle 0x1 tc_fence_egress direct-action", "tcx/"},
	} {
		t.Run(m.name, func(t *testing.T) {
			r.t = t
			r.load(m.mode)
			defer r.dp.Close()
			shown := r.shown()
			if !strings.Contains(shown, m.shows) || strings.Contains(shown, m.lacks) {
				t.Errorf("attached to eth0: want %q and no %q:\n%s", m.shows, m.lacks, shown)
			}
			if m.mode == loader.TCX && !strings.Contains(shown, "tcx/egress tc_fence_egress") {
				t.Errorf("no TCX egress program:\n%s", shown)
			}
			if m.mode == loader.TCClsact && !strings.Contains(shown, "qdisc clsact") {
				t.Errorf("no clsact qdisc:\n%s", shown)
			}

			r.own(loader.StateBackup, time.Minute)
			before := r.fenced()
			if r.pings() {
				t.Error("the VIP answered while its instance was BACKUP")
			}
			if r.fenced() == before {
				t.Error("fence counters did not move")
			}
			r.own(loader.StateMaster, time.Minute)
			if !r.pings() {
				t.Error("the VIP did not answer while its instance was MASTER with a lease")
			}
			r.own(loader.StateMaster, -time.Millisecond)
			if r.pings() {
				t.Error("the VIP answered after its lease ran out")
			}
		})
	}
	r.t = t
	r.load(loader.TCAuto)
	if err := r.dp.Remove(); err != nil {
		t.Fatal(err)
	}
	if shown := r.shown(); strings.Contains(shown, "xdp") || strings.Contains(shown, "tc_fence") || strings.Contains(shown, "clsact") {
		t.Errorf("left on eth0 after Remove:\n%s", shown)
	}
	if _, err := os.Stat(r.pinDir); !os.IsNotExist(err) {
		t.Errorf("pin directory left after Remove: %v", err)
	}
}

// TestStalePinnedLinks detaches the pinned links behind the loader's back (their
// pins stay, and updating them fails with ENOLINK); the next start replaces them.
func TestStalePinnedLinks(t *testing.T) {
	r := newFenceRig(t)
	r.load(loader.TCX)
	r.dp.Close()
	pins := []string{"xdp", "tc_ingress", "tc_egress"}
	for _, name := range pins {
		l, err := link.LoadPinnedLink(fmt.Sprintf("%s/links/%d_%s", r.pinDir, r.ifindex, name), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Detach(); err != nil {
			t.Fatalf("detach %s: %v", name, err)
		}
		l.Close()
	}
	if shown := r.shown(); strings.Contains(shown, "prog/xdp") || strings.Contains(shown, "tc_fence") {
		t.Fatalf("still attached after detaching the links:\n%s", shown)
	}

	r.load(loader.TCX)
	defer r.dp.Remove()
	if got := strings.Count(r.log.String(), "replacing stale pinned link"); got != len(pins) {
		t.Errorf("logged %d stale links, want %d:\n%s", got, len(pins), r.log.String())
	}
	if shown := r.shown(); !strings.Contains(shown, "prog/xdp") || !strings.Contains(shown, "tcx/ingress tc_fence_ingress") || !strings.Contains(shown, "tcx/egress tc_fence_egress") {
		t.Errorf("not attached after the restart:\n%s", shown)
	}
	r.own(loader.StateBackup, time.Minute)
	if r.pings() {
		t.Error("the VIP answered while BACKUP: the fence was not reattached")
	}
}

// attached describes what is attached to a host's eth0: XDP as ip-link shows
// it, TCX programs by name as "tcx/ingress prog_name" (bpftool 7.1 does not list
// TCX), and tc's filters and qdiscs.
func attached(h *lab.Host, ifindex int) string {
	var b strings.Builder
	out, _ := h.Run(context.Background(), "ip", "-d", "link", "show", "dev", "eth0")
	b.Write(out)
	h.Do(func() error {
		for _, a := range []struct {
			name string
			typ  ebpf.AttachType
		}{{"tcx/ingress", ebpf.AttachTCXIngress}, {"tcx/egress", ebpf.AttachTCXEgress}} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: a.typ})
			if err != nil {
				fmt.Fprintf(&b, "%s: %v\n", a.name, err)
				continue
			}
			for _, p := range res.Programs {
				prog, err := ebpf.NewProgramFromID(p.ID)
				if err != nil {
					continue
				}
				info, _ := prog.Info()
				prog.Close()
				fmt.Fprintf(&b, "%s %s\n", a.name, info.Name)
			}
		}
		return nil
	})
	for _, args := range [][]string{{"filter", "show", "dev", "eth0", "ingress"}, {"filter", "show", "dev", "eth0", "egress"}, {"qdisc", "show", "dev", "eth0"}} {
		out, _ := h.Run(context.Background(), "tc", args...)
		b.Write(out)
	}
	return b.String()
}
