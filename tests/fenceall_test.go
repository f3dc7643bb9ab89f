package tests

import (
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
	"golang.org/x/sys/unix"
)

// TestFenceOnEveryInterface: the master's instance and VIP are on eth0, but a
// client reaches the VIP through the master's second interface, eth1, and is
// answered through it (Linux answers for a local address on any interface).
// Frozen past its lease, the master must stop answering there too: every
// interface of the node carries the fence, not only the instance's.
func TestFenceOnEveryInterface(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1, Client: true, SecondLink: true})
	h1 := l.Hosts[0]
	if err := h1.StartResponder(); err != nil {
		t.Fatal(err)
	}
	// The client, on the same bridge, gets an address of eth1's subnet and a
	// route to the VIP through h1's eth1, so that both ways go through eth1.
	src := netip.MustParseAddr("198.51.100.200")
	err := l.Client.Netlink(func(nh *netlink.Handle) error {
		eth, err := nh.LinkByName("eth0")
		if err != nil {
			return err
		}
		if err := nh.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: src.AsSlice(), Mask: net.CIDRMask(24, 32)}, Flags: unix.IFA_F_NODAD}); err != nil {
			return err
		}
		return nh.RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Dst: &net.IPNet{IP: vip4.AsSlice(), Mask: net.CIDRMask(32, 32)},
			Gw: h1.Eth1IPv4.Addr().AsSlice(), Src: src.AsSlice()})
	})
	if err != nil {
		t.Fatal(err)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	p := probeVIP(t, l, "h1")

	x1.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { x1.Signal(syscall.SIGCONT) })
	frozen := time.Now()
	time.Sleep(time.Second)
	p.Stop()
	lease := vrrp.Lease(3, 50*time.Millisecond, 0) + 50*time.Millisecond // and some
	answered := 0
	for _, a := range p.Answers() {
		if a.Sent.After(frozen.Add(lease)) && a.From != "" {
			answered++
		}
	}
	if answered > 0 {
		t.Errorf("the frozen master answered %d probes through eth1 after its lease ran out", answered)
	}
	if in, _ := fencedCounts(t, x1.PinDir); in == 0 {
		t.Error("the fence dropped nothing")
	}
}
