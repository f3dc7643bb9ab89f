package tests

import (
	"context"
	"fmt"
	"net"
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
	"golang.org/x/sys/unix"
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

const routesBlock = `    virtual_routes {
        198.51.100.0/25 via 192.0.2.254 dev eth0
        src 192.0.2.1 to 198.51.100.128/26 dev eth0
        blackhole 198.51.100.192/26 table 100
        2001:db8:5::/48 via 2001:db8::fe
    }
    virtual_rules {
        from 192.0.2.0/24 table 100 preference 1000
    }`

var virtualRoutes = []struct {
	dst   string
	table int
}{{"198.51.100.0/25", 254}, {"198.51.100.128/26", 254}, {"198.51.100.192/26", 100}, {"2001:db8:5::/48", 254}}

// hasRoute reports whether the host has a route to dst in table.
func hasRoute(t *testing.T, h *lab.Host, dst string, table int) bool {
	t.Helper()
	p := netip.MustParsePrefix(dst)
	fam := netlink.FAMILY_V4
	if p.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	var n int
	err := h.Netlink(func(nh *netlink.Handle) error {
		_, ipn, _ := net.ParseCIDR(dst)
		rs, err := nh.RouteListFiltered(fam, &netlink.Route{Dst: ipn, Table: table}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		n = len(rs)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// hasRule reports whether the host has the policy rule from 192.0.2.0/24 to
// table 100 at preference 1000.
func hasRule(t *testing.T, h *lab.Host) bool {
	t.Helper()
	found := false
	err := h.Netlink(func(nh *netlink.Handle) error {
		rules, err := nh.RuleList(netlink.FAMILY_V4)
		for _, r := range rules {
			if r.Table == 100 && r.Priority == 1000 && r.Src != nil && r.Src.String() == "192.0.2.0/24" {
				found = true
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// virtual_routes and virtual_rules: installed on the master only, removed when
// it leaves MASTER, and a route removed behind the master's back is put back.
func TestVirtualRoutesAndRules(t *testing.T) {
	l, x1, x2 := pair(t, node{prio: 150, extra: routesBlock}, node{prio: 100, extra: routesBlock})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	only := func(master, backup *lab.Host) {
		t.Helper()
		for _, r := range virtualRoutes {
			if !hasRoute(t, master, r.dst, r.table) || hasRoute(t, backup, r.dst, r.table) {
				t.Errorf("route %s table %d: on %s %v, on %s %v; want only on the master, %s", r.dst, r.table,
					master.Name, hasRoute(t, master, r.dst, r.table), backup.Name, hasRoute(t, backup, r.dst, r.table), master.Name)
			}
		}
		if !hasRule(t, master) || hasRule(t, backup) {
			t.Errorf("rule: on %s %v, on %s %v; want only on the master, %s", master.Name, hasRule(t, master), backup.Name, hasRule(t, backup), master.Name)
		}
	}
	only(h1, h2)

	if err := x1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	<-x1.Done()
	only(h2, h1)

	err := h2.Netlink(func(nh *netlink.Handle) error {
		_, ipn, _ := net.ParseCIDR("198.51.100.0/25")
		return nh.RouteDel(&netlink.Route{Dst: ipn, Table: 254})
	})
	if err != nil {
		t.Fatalf("remove the route by hand: %v", err)
	}
	waitLog(t, x2, "(VI_1) route 198.51.100.0/25 was removed by something else while master: put back")
	if !hasRoute(t, h2, "198.51.100.0/25", 254) {
		t.Error("route not back after the log says so")
	}

	// The rule, deleted by hand in the master's namespace: back, logged and
	// counted. Before, nothing watched rules and it stayed deleted.
	if err := h2.Netlink(func(nh *netlink.Handle) error { return nh.RuleDel(virtualRule()) }); err != nil {
		t.Fatalf("remove the rule by hand: %v", err)
	}
	waitLog(t, x2, "(VI_1) rule from 192.0.2.0/24 table 100 preference 1000 was removed by something else while master: put back")
	if !hasRule(t, h2) {
		t.Error("rule not back after the log says so")
	}
	if got := status(t, h2, x2).Instances[0].Restored; got != 2 {
		t.Errorf("status restored = %d after a route and a rule were put back, want 2", got)
	}
}

// virtualRule is routesBlock's rule, as netlink deletes it.
func virtualRule() *netlink.Rule {
	r := netlink.NewRule()
	_, r.Src, _ = net.ParseCIDR("192.0.2.0/24")
	r.Table, r.Priority = 100, 1000
	return r
}

// no_track on a virtual_ipaddress_excluded line, a virtual_routes line and a
// virtual_rules line (keepalived's man page: the instance does not leave
// MASTER when it is deleted, and it is not reinstated until the instance next
// becomes master): deleted by hand, each stays deleted, while its tracked
// neighbours are put back; the next mastership installs them all again.
func TestNoTrack(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	conf := nodeConfig(node{prio: 100, extra: `    virtual_ipaddress_excluded {
        192.0.2.7/24
        192.0.2.8/24 no_track
    }
    virtual_routes {
        198.51.100.0/25 dev eth0
        198.51.100.128/25 dev eth0 no_track
    }
    virtual_rules {
        from 192.0.2.0/24 table 100 preference 1000
        from 198.51.100.0/24 table 100 preference 1001 no_track
    }`})
	x, err := h.StartXvrrp(xvrrpBin, conf)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
	untracked := netip.MustParseAddr("192.0.2.8")
	rule2 := func() *netlink.Rule {
		r := netlink.NewRule()
		_, r.Src, _ = net.ParseCIDR("198.51.100.0/24")
		r.Table, r.Priority = 100, 1001
		return r
	}
	hasRule2 := func() bool {
		found := false
		if err := h.Netlink(func(nh *netlink.Handle) error {
			rules, err := nh.RuleList(netlink.FAMILY_V4)
			for _, r := range rules {
				found = found || r.Priority == 1001 && r.Table == 100
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return found
	}
	if !hasVIP(t, h, untracked) || !hasRoute(t, h, "198.51.100.128/25", 254) || !hasRule2() {
		t.Fatal("the no_track address, route or rule was not installed with mastership")
	}
	// Delete the untracked ones, then a tracked one of each kind; once the
	// tracked ones are back, the untracked deletions were seen too.
	err = h.Netlink(func(nh *netlink.Handle) error {
		lnk, err := nh.LinkByName("eth0")
		if err != nil {
			return err
		}
		for _, a := range []string{"192.0.2.8/24", "192.0.2.7/24"} {
			addr, _ := netlink.ParseAddr(a)
			if err := nh.AddrDel(lnk, addr); err != nil {
				return fmt.Errorf("address %s: %w", a, err)
			}
		}
		for _, dst := range []string{"198.51.100.128/25", "198.51.100.0/25"} {
			_, ipn, _ := net.ParseCIDR(dst)
			// Scope nowhere matches any, as ip route del sends it.
			if err := nh.RouteDel(&netlink.Route{Dst: ipn, Table: 254, Scope: netlink.SCOPE_NOWHERE}); err != nil {
				return fmt.Errorf("route %s: %w", dst, err)
			}
		}
		for _, r := range []*netlink.Rule{rule2(), virtualRule()} {
			if err := nh.RuleDel(r); err != nil {
				return fmt.Errorf("rule %v: %w", r, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("delete by hand: %v", err)
	}
	waitLog(t, x, "(VI_1) 192.0.2.7/24 dev eth0 was removed by something else while master: put back")
	waitLog(t, x, "(VI_1) route 198.51.100.0/25 was removed by something else while master: put back")
	waitLog(t, x, "(VI_1) rule from 192.0.2.0/24 table 100 preference 1000 was removed by something else while master: put back")
	time.Sleep(200 * time.Millisecond)
	if hasVIP(t, h, untracked) || hasRoute(t, h, "198.51.100.128/25", 254) || hasRule2() {
		t.Errorf("a no_track address, route or rule was put back:\n%s", x.Output())
	}
	if strings.Contains(x.Output(), "Entering BACKUP STATE (") && strings.Count(x.Output(), "Entering") != 2 {
		t.Errorf("the instance changed state:\n%s", x.Output())
	}
}

// The address options of virtual_ipaddress lines, as `ip address add` takes
// them, on the addresses the master adds.
func TestAddressOptions(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	x, err := h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: `    virtual_ipaddress_excluded {
        192.0.2.52/24 brd 192.0.2.127
        192.0.2.53 peer 192.0.2.54
        2001:db8::51/64 home mngtmpaddr preferred_lft 0
        239.1.2.3/32 autojoin
    }`}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
	got := map[string]netlink.Addr{}
	err = h.Netlink(func(nh *netlink.Handle) error {
		lnk, err := nh.LinkByName("eth0")
		if err != nil {
			return err
		}
		addrs, err := nh.AddrList(lnk, netlink.FAMILY_ALL)
		for _, a := range addrs {
			got[a.IP.String()] = a
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := got["192.0.2.52"]; !ok || !a.Broadcast.Equal(net.ParseIP("192.0.2.127")) {
		t.Errorf("192.0.2.52 brd 192.0.2.127: %+v", a)
	}
	if a, ok := got["192.0.2.53"]; !ok || a.Peer == nil || !a.Peer.IP.Equal(net.ParseIP("192.0.2.54")) {
		t.Errorf("192.0.2.53 peer 192.0.2.54: %+v", a)
	}
	a, ok := got["2001:db8::51"]
	const want6 = unix.IFA_F_HOMEADDRESS | unix.IFA_F_MANAGETEMPADDR | unix.IFA_F_DEPRECATED
	if !ok || a.Flags&want6 != want6 || a.PreferedLft != 0 {
		t.Errorf("2001:db8::51 home mngtmpaddr preferred_lft 0: flags %#x preferred %d (%v)", a.Flags, a.PreferedLft, ok)
	}
	if a, ok := got["239.1.2.3"]; !ok || a.Flags&unix.IFA_F_MCAUTOJOIN == 0 {
		t.Errorf("239.1.2.3 autojoin: flags %#x (%v)", a.Flags, ok)
	}
}

// track_src_ip: the configured source address removed, the instance goes to
// FAULT (and gives up the VIP); back, it leaves FAULT.
func TestTrackSrcIP(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	src := "192.0.2.60/24"
	addr := func(add bool) {
		t.Helper()
		err := h.Netlink(func(nh *netlink.Handle) error {
			lnk, err := nh.LinkByName("eth0")
			if err != nil {
				return err
			}
			a, _ := netlink.ParseAddr(src)
			if add {
				return nh.AddrAdd(lnk, a)
			}
			return nh.AddrDel(lnk, a)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	addr(true)
	x, err := h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: "mcast_src_ip 192.0.2.60\ntrack_src_ip"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
	addr(false)
	waitLog(t, x, "(VI_1) Entering FAULT STATE")
	if hasVIP(t, h, vip4) {
		t.Error("in FAULT with the VIP")
	}
	addr(true)
	// Out of FAULT: BACKUP a second time (the first was at start), then
	// MASTER again, alone on the link.
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(x.Output(), "(VI_1) Entering MASTER STATE") < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("not master again after the source address came back:\n%s", x.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Count(x.Output(), "(VI_1) Entering BACKUP STATE") != 2 {
		t.Errorf("want BACKUP at start and after FAULT:\n%s", x.Output())
	}
}

// promote_secondaries: set on the instance's interface while xvrrp runs, put
// back as it was at stop.
func TestPromoteSecondaries(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	read := func() string {
		t.Helper()
		out, err := h.Run(context.Background(), "cat", "/proc/sys/net/ipv4/conf/eth0/promote_secondaries")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := read(); got != "0" {
		t.Fatalf("promote_secondaries %s before xvrrp, want the kernel's 0", got)
	}
	x, err := h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: "promote_secondaries"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
	if got := read(); got != "1" {
		t.Errorf("promote_secondaries %s while xvrrp runs, want 1", got)
	}
	x.Signal(syscall.SIGTERM)
	<-x.Done()
	if got := read(); got != "0" {
		t.Errorf("promote_secondaries %s after xvrrp stopped, want 0 as it was", got)
	}
}
