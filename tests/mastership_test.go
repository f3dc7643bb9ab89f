package tests

import (
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

var (
	excluded4 = netip.MustParseAddr("192.0.2.7")
	excluded6 = netip.MustParseAddr("2001:db8::7")
)

const excludedBlock = `    virtual_ipaddress_excluded {
        192.0.2.7/24
        2001:db8::7/64
    }`

// virtual_ipaddress_excluded: the addresses come and go with mastership, like
// the VIPs, and are served only by the master, but adverts do not carry them
// (and may mix families, as keepalived allows).
func TestExcludedVIPs(t *testing.T) {
	l, x1, x2 := pair(t, node{prio: 150, extra: excludedBlock}, node{prio: 100, extra: excludedBlock})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p, err := l.Client.StartProber(excluded4, 5*time.Millisecond, 4000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	answeredBy(t, p, "h1")

	w, err := h2.Capture("ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // a few adverts at 50 ms
	frames, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	adverts := 0
	for _, f := range frames {
		pkt, err := vrrp.DecodeFrame(f.Data)
		if err != nil || pkt.Src != h1.IPv4.Addr() {
			continue
		}
		adverts++
		if !slices.Equal(pkt.Advert.Addrs, []netip.Addr{vip4}) {
			t.Errorf("h1 advertises %v, want only the VIP %v", pkt.Advert.Addrs, vip4)
		}
	}
	if adverts == 0 {
		t.Fatalf("no advert from h1 among %d frames", len(frames))
	}
	for _, a := range []netip.Addr{excluded4, excluded6} {
		if !hasVIP(t, h1, a) || hasVIP(t, h2, a) {
			t.Errorf("%v on h1 %v, on h2 %v: want only on the master, h1", a, hasVIP(t, h1, a), hasVIP(t, h2, a))
		}
	}

	if err := x1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	<-x1.Done()
	answeredBy(t, p, "h2")
	for _, a := range []netip.Addr{excluded4, excluded6} {
		if hasVIP(t, h1, a) || !hasVIP(t, h2, a) {
			t.Errorf("after h1 stopped: %v on h1 %v, on h2 %v: want only on the new master, h2", a, hasVIP(t, h1, a), hasVIP(t, h2, a))
		}
	}
}

// A VIP or excluded VIP removed by something else (NetworkManager, an
// operator) while master is put back, logged and counted; the instance stays
// master — keepalived would fail over (its issue #2479).
func TestRemovedVIPIsPutBack(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	x, err := h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: excludedBlock}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
	for i, pfx := range []string{"192.0.2.1/24", "192.0.2.7/24", "2001:db8::7/64"} {
		err := h.Netlink(func(nh *netlink.Handle) error {
			lnk, err := nh.LinkByName("eth0")
			if err != nil {
				return err
			}
			addr, err := netlink.ParseAddr(pfx)
			if err != nil {
				return err
			}
			return nh.AddrDel(lnk, addr)
		})
		if err != nil {
			t.Fatalf("remove %s by hand: %v", pfx, err)
		}
		waitLog(t, x, "(VI_1) "+pfx+" dev eth0 was removed by something else while master: put back")
		ip := netip.MustParsePrefix(pfx).Addr()
		if !hasVIP(t, h, ip) {
			t.Errorf("%s not back after the log says so", pfx)
		}
		if got := status(t, h, x).Instances[0].Restored; got != uint64(i+1) {
			t.Errorf("status restored = %d after %d removals", got, i+1)
		}
	}
	if strings.Count(x.Output(), "Entering") != 2 || strings.Contains(x.Output(), "Entering FAULT") {
		t.Errorf("the instance changed state:\n%s", x.Output())
	}
}
