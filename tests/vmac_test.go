package tests

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// vmac51 is VRID 51's virtual router MAC for IPv4 (RFC 5798 7.3), what
// keepalived 2.2.7 gives its VMAC.
var vmac51 = net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x01, 51}

// vmacOf reads the host's interface name: a macvlan's parent, mode and MAC,
// and whether it is up; ok is false when there is no such interface.
func vmacOf(t *testing.T, h *lab.Host, name string) (parent string, mode netlink.MacvlanMode, mac net.HardwareAddr, up, ok bool) {
	t.Helper()
	err := h.Netlink(func(nh *netlink.Handle) error {
		l, err := nh.LinkByName(name)
		if err != nil {
			return nil
		}
		mv, isMV := l.(*netlink.Macvlan)
		if !isMV {
			t.Fatalf("%s: %s is a %s, not a macvlan", h.Name, name, l.Type())
		}
		p, err := nh.LinkByIndex(mv.ParentIndex)
		if err != nil {
			return err
		}
		parent, mode, mac, up, ok = p.Attrs().Name, mv.Mode, mv.HardwareAddr, mv.Flags&net.FlagUp != 0, true
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return
}

// vipOn says on which interface of the host addr is, "" when on none.
func vipOn(t *testing.T, h *lab.Host, addr netip.Addr) string {
	t.Helper()
	on := ""
	err := h.Netlink(func(nh *netlink.Handle) error {
		addrs, err := nh.AddrList(nil, netlink.FAMILY_ALL)
		for _, a := range addrs {
			if a.IP.Equal(addr.AsSlice()) {
				l, err := nh.LinkByIndex(a.LinkIndex)
				if err != nil {
					return err
				}
				on = l.Attrs().Name
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return on
}

// sysctl reads /proc/sys/net/PATH in the host's namespace.
func sysctl(t *testing.T, h *lab.Host, path string) string {
	t.Helper()
	var v []byte
	err := h.Do(func() (err error) {
		v, err = os.ReadFile(filepath.Join("/proc/sys/net", path))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(v))
}

// clientNeigh is the client's neighbour entry's MAC for addr, nil when none.
func clientNeigh(t *testing.T, l *lab.Lab, addr netip.Addr) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	err := l.Client.Netlink(func(nh *netlink.Handle) error {
		ns, err := nh.NeighList(0, netlink.FAMILY_V4)
		for _, n := range ns {
			if n.IP.Equal(addr.AsSlice()) && len(n.HardwareAddr) == 6 {
				mac = n.HardwareAddr
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return mac
}

// wireFrame is what the vmac tests read of a captured frame.
type wireFrame struct {
	at        time.Time
	src       net.HardwareAddr
	vrrpFrom  netip.Addr // an IPv4 VRRP advert's source address, else invalid
	garpFor   netip.Addr // a gratuitous ARP's address, else invalid
	arpSHA    net.HardwareAddr
	arp       bool // any ARP
	ethertype uint16
	proto     uint8 // IPv4 protocol or IPv6 next header
}

func readWire(frames []lab.Frame) []wireFrame {
	var out []wireFrame
	for _, f := range frames {
		d := f.Data
		if len(d) < 14 {
			continue
		}
		w := wireFrame{at: f.Time, src: net.HardwareAddr(d[6:12]), ethertype: binary.BigEndian.Uint16(d[12:14])}
		switch w.ethertype {
		case 0x0800:
			if len(d) >= 34 {
				w.proto = d[23]
			}
			if len(d) >= 34 && d[23] == 112 {
				w.vrrpFrom = netip.AddrFrom4([4]byte(d[26:30]))
			}
		case 0x86dd:
			if len(d) >= 54 {
				w.proto = d[20]
			}
		case 0x0806:
			w.arp = true
			// Ethernet/IPv4 ARP: sender hardware at 22, sender IP at 28,
			// target IP at 38; gratuitous when the two IPs are the same.
			if len(d) >= 42 && bytes.Equal(d[28:32], d[38:42]) {
				w.garpFor, w.arpSHA = netip.AddrFrom4([4]byte(d[28:32])), net.HardwareAddr(d[22:28])
			}
		}
		out = append(out, w)
	}
	return out
}

// TestVMAC: use_vmac as keepalived 2.2.7 does it, with and without
// vmac_xmit_base. Each node makes vrrp.51, a private macvlan on eth0 with MAC
// 00:00:5e:00:01:33, up as backup too; the master's VIP is on it; eth0 gets
// arp_ignore and arp_filter, the VMAC arp_ignore and accept_local. On the
// wire (the client's capture) adverts come from the VMAC's MAC, or from
// eth0's with vmac_xmit_base, and gratuitous ARPs from the VMAC's either way.
// The master's link is cut: the backup takes over, and the client's ARP entry
// for the VIP is the same MAC before and after — the point of a VMAC. Both
// nodes have the same VMAC MAC, so the backup's XDP must not take the
// master's adverts for its own (it would become master beside it). At stop the
// VMAC is removed and the sysctls put back.
func TestVMAC(t *testing.T) {
	for _, xmitBase := range []bool{false, true} {
		name, extra := "adverts from the VMAC", "use_vmac"
		if xmitBase {
			name, extra = "vmac_xmit_base", "use_vmac\nvmac_xmit_base"
		}
		t.Run(name, func(t *testing.T) {
			l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			for _, h := range l.Hosts {
				if err := h.StartResponder(); err != nil {
					t.Fatal(err)
				}
			}
			capture, err := l.Client.Capture("")
			if err != nil {
				t.Fatal(err)
			}
			x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: extra}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, "(VI_1) Entering MASTER STATE")
			x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: extra}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE")

			for _, h := range l.Hosts {
				parent, mode, mac, up, ok := vmacOf(t, h, "vrrp.51")
				if !ok || parent != "eth0" || mode != netlink.MACVLAN_MODE_PRIVATE || !bytes.Equal(mac, vmac51) || !up {
					t.Errorf("%s: vrrp.51 exists %v, on %q, mode %v, MAC %v, up %v; want a private macvlan on eth0 with %v, up",
						h.Name, ok, parent, mode, mac, up, vmac51)
				}
				for path, want := range map[string]string{
					"ipv4/conf/eth0/arp_ignore": "1", "ipv4/conf/eth0/arp_filter": "1",
					"ipv4/conf/vrrp.51/arp_ignore": "1", "ipv4/conf/vrrp.51/accept_local": "1",
					"ipv6/conf/vrrp.51/disable_ipv6": "1",
				} {
					if got := sysctl(t, h, path); got != want {
						t.Errorf("%s: %s = %s, want %s (as keepalived sets it)", h.Name, path, got, want)
					}
				}
			}
			if on := vipOn(t, h1, vip4); on != "vrrp.51" {
				t.Errorf("h1, master: the VIP is on %q, want vrrp.51", on)
			}
			if on := vipOn(t, h2, vip4); on != "" {
				t.Errorf("h2, backup: the VIP is on %q", on)
			}
			p := probeVIP(t, l, "h1")
			before := clientNeigh(t, l, vip4)
			if !bytes.Equal(before, vmac51) {
				t.Errorf("the client's ARP entry for the VIP is %v, want the VMAC %v", before, vmac51)
			}
			time.Sleep(300 * time.Millisecond) // the backup hears a few adverts
			if n := countIn(x2.Proc, "Entering MASTER STATE"); n != 0 {
				t.Fatalf("the backup became master while the master ran (its XDP took the master's adverts for its own?):\n%s", x2.Output())
			}

			cut := time.Now()
			if err := h1.Cut(); err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			answeredBy(t, p, "h2")
			if on := vipOn(t, h2, vip4); on != "vrrp.51" {
				t.Errorf("h2, new master: the VIP is on %q, want vrrp.51", on)
			}
			if after := clientNeigh(t, l, vip4); !bytes.Equal(after, before) {
				t.Errorf("the client's ARP entry for the VIP changed across the failover: %v, then %v", before, after)
			}
			time.Sleep(200 * time.Millisecond)
			frames, err := capture.Stop()
			if err != nil {
				t.Fatal(err)
			}
			var adverts, garps [2]int
			for _, f := range readWire(frames) {
				switch {
				case bytes.Equal(f.src, vmac51) && !f.vrrpFrom.IsValid() && !f.garpFor.IsValid() && !f.arp:
					// The kernel's own IGMP/MLD reports and router
					// solicitations from a VMAC would draw the VIP's
					// traffic to whichever node sent them last.
					t.Errorf("a frame from the VMAC's MAC that is neither an advert nor ARP (ethertype %#04x, IP protocol %d)", f.ethertype, f.proto)
				case f.vrrpFrom.IsValid():
					i, h := 0, h1
					if f.vrrpFrom == h2.IPv4.Addr() {
						i, h = 1, h2
					} else if f.vrrpFrom != h1.IPv4.Addr() {
						continue
					}
					want := vmac51
					if xmitBase {
						want = h.MAC
					}
					if !bytes.Equal(f.src, want) {
						t.Errorf("an advert from %s came from MAC %v, want %v", h.Name, f.src, want)
					}
					adverts[i]++
				case f.garpFor == vip4:
					if !bytes.Equal(f.src, vmac51) || !bytes.Equal(f.arpSHA, vmac51) {
						t.Errorf("a gratuitous ARP for the VIP came from %v announcing %v, want the VMAC %v", f.src, f.arpSHA, vmac51)
					}
					if f.at.After(cut) {
						garps[1]++
					} else {
						garps[0]++
					}
				}
			}
			if adverts[0] == 0 || adverts[1] == 0 || garps[0] == 0 || garps[1] == 0 {
				t.Errorf("captured adverts from h1 %d, h2 %d; gratuitous ARPs before the cut %d, after %d: want some of each",
					adverts[0], adverts[1], garps[0], garps[1])
			}

			// At stop the VMAC goes, and the sysctls are put back.
			if err := x2.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			<-x2.Done()
			if _, _, _, _, ok := vmacOf(t, h2, "vrrp.51"); ok {
				t.Error("h2: vrrp.51 is still there after xvrrp stopped")
			}
			for _, k := range []string{"arp_ignore", "arp_filter"} {
				if got := sysctl(t, h2, "ipv4/conf/eth0/"+k); got != "0" {
					t.Errorf("h2: eth0 %s = %s after stop, want 0 as it was", k, got)
				}
			}
		})
	}
}

// TestVMACFence: the VMAC carries the VIP and the client sends to its MAC, but
// a master frozen past its lease must answer nothing: the fence on eth0 sees
// the frames to the VMAC before the macvlan does.
func TestVMACFence(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1, Client: true})
	h1 := l.Hosts[0]
	if err := h1.StartResponder(); err != nil {
		t.Fatal(err)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: "use_vmac"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	p := probeVIP(t, l, "h1")
	if mac := clientNeigh(t, l, vip4); !bytes.Equal(mac, vmac51) {
		t.Fatalf("the client reaches the VIP at %v, want the VMAC %v", mac, vmac51)
	}
	inBefore, _ := fencedCounts(t, x1.PinDir)

	x1.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { x1.Signal(syscall.SIGCONT) })
	frozen := time.Now()
	time.Sleep(time.Second)
	p.Stop()
	if on := vipOn(t, h1, vip4); on != "vrrp.51" {
		t.Fatalf("the frozen master's VIP is on %q, want still on vrrp.51", on)
	}
	lease := vrrp.Lease(3, 50*time.Millisecond, 0) + 50*time.Millisecond // and some
	answered := 0
	for _, a := range p.Answers() {
		if a.Sent.After(frozen.Add(lease)) && a.From != "" {
			answered++
		}
	}
	if answered > 0 {
		t.Errorf("the frozen master answered %d probes to its VMAC after its lease ran out", answered)
	}
	if in, _ := fencedCounts(t, x1.PinDir); in <= inBefore {
		t.Error("the fence dropped nothing")
	}
}

// TestVMACIPv6: an IPv6 instance's VMAC is vrrp.61 with 00:00:5e:00:02:3d, as
// keepalived makes it, and carries the interface's link-local address, which
// the adverts come from with the VMAC's MAC; the new master's unsolicited NA
// comes from the VMAC too, and the client's neighbour entry for the VIP is the
// VMAC's MAC before and after a failover.
func TestVMACIPv6(t *testing.T) {
	vmac61 := net.HardwareAddr{0x00, 0x00, 0x5e, 0x00, 0x02, 61}
	conf := func(prio int) string {
		return strings.Replace(v6Config(prio), "advert_int 0.05", "advert_int 0.05\n    use_vmac", 1)
	}
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
	}
	capture, err := l.Client.Capture("ip6")
	if err != nil {
		t.Fatal(err)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, conf(150))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_6) Entering MASTER STATE")
	x2, err := h2.StartXvrrp(xvrrpBin, conf(100))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_6) Entering BACKUP STATE (init)")
	for _, h := range l.Hosts {
		parent, mode, mac, up, ok := vmacOf(t, h, "vrrp.61")
		if !ok || parent != "eth0" || mode != netlink.MACVLAN_MODE_PRIVATE || !bytes.Equal(mac, vmac61) || !up {
			t.Errorf("%s: vrrp.61 exists %v, on %q, mode %v, MAC %v, up %v; want a private macvlan on eth0 with %v, up",
				h.Name, ok, parent, mode, mac, up, vmac61)
		}
	}
	if on := vipOn(t, h1, vip6); on != "vrrp.61" {
		t.Errorf("h1: the VIP is on %q, want vrrp.61", on)
	}
	p, err := l.Client.StartProber(vip6, 5*time.Millisecond, 4000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	answeredBy(t, p, "h1")
	neigh := func() net.HardwareAddr {
		var mac net.HardwareAddr
		err := l.Client.Netlink(func(nh *netlink.Handle) error {
			ns, err := nh.NeighList(0, netlink.FAMILY_V6)
			for _, n := range ns {
				if n.IP.Equal(vip6.AsSlice()) {
					mac = n.HardwareAddr
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return mac
	}
	before := neigh()
	if !bytes.Equal(before, vmac61) {
		t.Errorf("the client's neighbour entry for the VIP is %v, want the VMAC %v", before, vmac61)
	}
	if err := h1.Cut(); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_6) Entering MASTER STATE")
	answeredBy(t, p, "h2")
	if after := neigh(); !bytes.Equal(after, before) {
		t.Errorf("the client's neighbour entry for the VIP changed across the failover: %v, then %v", before, after)
	}
	p.Stop()
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}
	lls := map[netip.Addr]string{}
	for _, h := range l.Hosts {
		h.Netlink(func(nh *netlink.Handle) error {
			eth, err := nh.LinkByName("eth0")
			if err != nil {
				return err
			}
			addrs, err := nh.AddrList(eth, netlink.FAMILY_V6)
			for _, a := range addrs {
				if ip, _ := netip.AddrFromSlice(a.IP); ip.IsLinkLocalUnicast() {
					lls[ip] = h.Name
				}
			}
			return err
		})
	}
	adverts := map[string]int{}
	na := false
	for _, f := range frames {
		if pkt, err := vrrp.DecodeFrame(f.Data); err == nil {
			if !bytes.Equal(f.Data[6:12], vmac61) || lls[pkt.Src] == "" {
				t.Errorf("an advert from %v (MAC %v); want an interface's link-local address and the VMAC's MAC",
					pkt.Src, net.HardwareAddr(f.Data[6:12]))
			}
			adverts[lls[pkt.Src]]++
			continue
		}
		if len(f.Data) >= 14+40+24 && f.Data[14+6] == 58 && f.Data[54] == 136 && bytes.Equal(f.Data[62:78], vip6.AsSlice()) {
			if !bytes.Equal(f.Data[6:12], vmac61) {
				t.Errorf("a neighbour advertisement for the VIP came from %v, want the VMAC", net.HardwareAddr(f.Data[6:12]))
			}
			na = true
			continue
		}
		// Anything else from the VMAC's MAC (the kernel's MLD reports for
		// its addresses' groups, router solicitations) would draw the
		// VIP's traffic to whichever node sent it last.
		if bytes.Equal(f.Data[6:12], vmac61) && len(f.Data) >= 55 {
			t.Errorf("a frame from the VMAC's MAC that is neither an advert nor an NA for the VIP: next header %d, then %d",
				f.Data[20], f.Data[54])
		}
	}
	if adverts["h1"] == 0 || adverts["h2"] == 0 || !na {
		t.Errorf("captured adverts from h1 %d, h2 %d, an NA for the VIP %v: want some of each", adverts["h1"], adverts["h2"], na)
	}
}

// TestVMACReloadAndFault: a reload that adds use_vmac to the instance restarts
// it on a new VMAC, the VIP moves onto it; one that removes the instance
// removes its VMAC; the interface going down puts a VMAC instance in FAULT and
// the VIP goes, as without a VMAC; back up, it is master again on its VMAC;
// deleted and re-created, on a new VMAC.
func TestVMACReloadAndFault(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1, Client: true})
	h1 := l.Hosts[0]
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	if on := vipOn(t, h1, vip4); on != "eth0" {
		t.Fatalf("the VIP is on %q, want eth0 before use_vmac", on)
	}
	reloadWith(t, x1, nodeConfig(node{prio: 150, extra: "use_vmac"}), "configuration reloaded", 1)
	waitUntil(t, 5*time.Second, "the VIP on vrrp.51 after the reload", func() bool { return vipOn(t, h1, vip4) == "vrrp.51" })
	if _, _, mac, _, ok := vmacOf(t, h1, "vrrp.51"); !ok || !bytes.Equal(mac, vmac51) {
		t.Errorf("after the reload vrrp.51 exists %v with MAC %v", ok, mac)
	}

	if err := h1.SetLinkDown("eth0"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering FAULT STATE")
	waitUntil(t, 5*time.Second, "the VIP gone in FAULT", func() bool { return vipOn(t, h1, vip4) == "" })
	if err := h1.SetLinkUp("eth0"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the VIP back on vrrp.51", func() bool { return vipOn(t, h1, vip4) == "vrrp.51" })

	// eth0 deleted takes the VMAC with it; re-created, the instance makes
	// a new VMAC on it and is master there again.
	if err := h1.DeleteLink("eth0"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "the VIP gone with eth0", func() bool { return vipOn(t, h1, vip4) == "" })
	if err := h1.RecreateLink("eth0"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "re-created")
	waitUntil(t, 10*time.Second, "the VIP on a new vrrp.51", func() bool { return vipOn(t, h1, vip4) == "vrrp.51" })
	if parent, _, mac, up, ok := vmacOf(t, h1, "vrrp.51"); !ok || parent != "eth0" || !bytes.Equal(mac, vmac51) || !up {
		t.Errorf("after eth0 came back vrrp.51 exists %v on %q with %v, up %v", ok, parent, mac, up)
	}

	other := strings.NewReplacer("VI_1", "VI_2", "virtual_router_id 51", "virtual_router_id 52", "192.0.2.1/24", "192.0.2.2/24").
		Replace(nodeConfig(node{prio: 150}))
	reloadWith(t, x1, other, "configuration reloaded", 2)
	waitUntil(t, 5*time.Second, "vrrp.51 removed with its instance", func() bool {
		_, _, _, _, ok := vmacOf(t, h1, "vrrp.51")
		return !ok
	})
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestVMACRPFilter: with all.rp_filter strict, the kernel would apply it to
// the VMAC whatever the VMAC's own says, and drop a client's packets to the
// VIP (they arrive on the VMAC, the route back is eth0's). As keepalived
// 2.2.7 does (seen by running it): eth0 and default get the greater of theirs
// and all's, all becomes 0, the VMAC 0; the VIP answers; at stop all is put
// back.
func TestVMACRPFilter(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1, Client: true})
	h1 := l.Hosts[0]
	if err := h1.StartResponder(); err != nil {
		t.Fatal(err)
	}
	err := h1.Do(func() error { return os.WriteFile("/proc/sys/net/ipv4/conf/all/rp_filter", []byte("1"), 0) })
	if err != nil {
		t.Fatal(err)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: "use_vmac"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	for path, want := range map[string]string{
		"ipv4/conf/all/rp_filter": "0", "ipv4/conf/default/rp_filter": "1",
		"ipv4/conf/eth0/rp_filter": "1", "ipv4/conf/vrrp.51/rp_filter": "0",
	} {
		if got := sysctl(t, h1, path); got != want {
			t.Errorf("%s = %s while running, want %s", path, got, want)
		}
	}
	probeVIP(t, l, "h1")
	if err := x1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-x1.Done()
	for path, want := range map[string]string{
		"ipv4/conf/all/rp_filter": "1", "ipv4/conf/default/rp_filter": "0", "ipv4/conf/eth0/rp_filter": "0",
	} {
		if got := sysctl(t, h1, path); got != want {
			t.Errorf("%s = %s after stop, want %s as it was", path, got, want)
		}
	}
}

// TestVMACAddr: use_vmac_addr gives the VIP on eth1 a VMAC of its own on eth1,
// vrrp1.51 (vrrp.51 is the instance's), as keepalived 2.2.7 names it; a
// client on eth1's subnet reaches that VIP through the VMAC's MAC; at stop
// both VMACs go.
func TestVMACAddr(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1, Client: true, SecondLink: true})
	h1 := l.Hosts[0]
	if err := h1.StartResponder(); err != nil {
		t.Fatal(err)
	}
	vip1 := netip.MustParseAddr("198.51.100.1")
	err := l.Client.Netlink(func(nh *netlink.Handle) error {
		eth, err := nh.LinkByName("eth0")
		if err != nil {
			return err
		}
		return nh.AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: net.ParseIP("198.51.100.200"), Mask: net.CIDRMask(24, 32)}})
	})
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(nodeConfig(node{prio: 150, extra: "use_vmac\nuse_vmac_addr"}),
		"192.0.2.1/24\n", "192.0.2.1/24\n        198.51.100.1/24 dev eth1\n", 1)
	x1, err := h1.StartXvrrp(xvrrpBin, conf)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	for name, wantParent := range map[string]string{"vrrp.51": "eth0", "vrrp1.51": "eth1"} {
		parent, mode, mac, up, ok := vmacOf(t, h1, name)
		if !ok || parent != wantParent || mode != netlink.MACVLAN_MODE_PRIVATE || !bytes.Equal(mac, vmac51) || !up {
			t.Errorf("%s exists %v, on %q, mode %v, MAC %v, up %v; want a private macvlan on %s with %v, up",
				name, ok, parent, mode, mac, up, wantParent, vmac51)
		}
	}
	if on := vipOn(t, h1, vip1); on != "vrrp1.51" {
		t.Errorf("198.51.100.1 is on %q, want vrrp1.51", on)
	}
	if on := vipOn(t, h1, vip4); on != "vrrp.51" {
		t.Errorf("192.0.2.1 is on %q, want vrrp.51", on)
	}
	p, err := l.Client.StartProber(vip1, 5*time.Millisecond, 2000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	answeredBy(t, p, "h1")
	if mac := clientNeigh(t, l, vip1); !bytes.Equal(mac, vmac51) {
		t.Errorf("the client reaches 198.51.100.1 at %v, want the VMAC %v", mac, vmac51)
	}
	p.Stop()
	if err := x1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-x1.Done()
	for _, name := range []string{"vrrp.51", "vrrp1.51"} {
		if _, _, _, _, ok := vmacOf(t, h1, name); ok {
			t.Errorf("%s is still there after stop", name)
		}
	}
}

// TestVMACRestartWithinLease: with --keep-datapath the VMAC stays with the
// VIP on it, and the daemon started again takes it over (it is a private
// macvlan on eth0 with the virtual MAC) and carries on as master with no
// answer from the backup (restartWithinLease checks that).
func TestVMACRestartWithinLease(t *testing.T) {
	h1 := restartWithinLease(t, "use_vmac")
	if on := vipOn(t, h1, vip4); on != "vrrp.51" {
		t.Errorf("after the restart the VIP is on %q, want vrrp.51", on)
	}
}

// TestVMACDeletedBehindItsBack: something else deletes an instance's VMAC
// while its interface stays (an operator, a network manager tidying up
// interfaces it does not know). keepalived 2.2.7 makes it again; so does
// xvrrp, at once: the backup's with nothing on it, the master's with its VIP
// put back and announced, so the client is answered by the same master
// through the same virtual MAC within moments, and nobody changes state.
func TestVMACDeletedBehindItsBack(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150, extra: "use_vmac"}, node{prio: 100, extra: "use_vmac"})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")

	del := func(h *lab.Host) {
		t.Helper()
		if err := h.Netlink(func(nh *netlink.Handle) error {
			lnk, err := nh.LinkByName("vrrp.51")
			if err != nil {
				return err
			}
			return nh.LinkDel(lnk)
		}); err != nil {
			t.Fatalf("%s: delete vrrp.51: %v", h.Name, err)
		}
	}
	back := func(h *lab.Host, x *lab.Xvrrp) {
		t.Helper()
		waitLog(t, x, "(VI_1) VMAC interface vrrp.51 was deleted by something else: re-creating it")
		deadline := time.Now().Add(5 * time.Second)
		for {
			parent, mode, mac, up, ok := vmacOf(t, h, "vrrp.51")
			if ok && up && parent == "eth0" && mode == netlink.MACVLAN_MODE_PRIVATE && bytes.Equal(mac, vmac51) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: vrrp.51 not back: ok %v up %v parent %q mode %v MAC %v", h.Name, ok, up, parent, mode, mac)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	del(h2)
	back(h2, x2)
	if on := vipOn(t, h2, vip4); on != "" {
		t.Errorf("h2, backup: the VIP is on %q after its VMAC came back, want nowhere", on)
	}

	del(h1)
	deleted := time.Now()
	back(h1, x1)
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		on := vipOn(t, h1, vip4)
		if on == "vrrp.51" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("h1, master: the VIP is on %q a second after its VMAC came back, want vrrp.51", on)
		}
	}
	time.Sleep(500 * time.Millisecond)
	p.Stop()
	settled := deleted.Add(250 * time.Millisecond)
	answered, unanswered := 0, 0
	for _, a := range p.Answers() {
		switch {
		case !a.Sent.After(settled):
		case a.From == "h1":
			answered++
		default:
			unanswered++
		}
	}
	if answered == 0 || unanswered > 0 {
		t.Errorf("probes from 250 ms after the deletion: %d answered by h1, %d not: want all by h1", answered, unanswered)
	}
	if mac := clientNeigh(t, l, vip4); !bytes.Equal(mac, vmac51) {
		t.Errorf("the client reaches the VIP at %v, want the VMAC %v", mac, vmac51)
	}
	if t.Failed() {
		t.Logf("h1:\n%s\nh2:\n%s", lastLines(x1.Output(), 30), lastLines(x2.Output(), 30))
	}
	// h1: BACKUP (init), MASTER; h2: BACKUP (init). No more.
	for x, want := range map[*lab.Xvrrp]int{x1: 2, x2: 1} {
		if n := countIn(x.Proc, "Entering"); n != want {
			t.Errorf("%d transitions, want %d:\n%s", n, want, lastLines(x.Output(), 20))
		}
	}
}

// TestSysctlsAfterKeepDatapathRestart: a daemon stopped with --keep-datapath
// leaves its VMAC and the sysctls it set (arp_ignore and arp_filter on the
// interface, promote_secondaries); the next run finds them set, and at its
// final stop puts back the values found before the first run — not the ones
// it found, which the first run set.
func TestSysctlsAfterKeepDatapathRestart(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h1 := l.Hosts[0]
	conf := nodeConfig(node{prio: 150, extra: "use_vmac\n    promote_secondaries"})
	keys := []string{"ipv4/conf/eth0/arp_ignore", "ipv4/conf/eth0/arp_filter", "ipv4/conf/eth0/promote_secondaries"}
	for _, k := range keys {
		if got := sysctl(t, h1, k); got != "0" {
			t.Fatalf("%s = %s before xvrrp, want the kernel's 0", k, got)
		}
	}
	x1, err := h1.StartXvrrp(xvrrpBin, conf, "--keep-datapath")
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	want := func(v, when string) {
		t.Helper()
		for _, k := range keys {
			if got := sysctl(t, h1, k); got != v {
				t.Errorf("%s = %s %s, want %s", k, got, when, v)
			}
		}
	}
	x1.Signal(syscall.SIGTERM)
	<-x1.Done()
	want("1", "after a stop with --keep-datapath, as xvrrp set it")
	x2, err := h1.StartXvrrp(xvrrpBin, conf)
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	x2.Signal(syscall.SIGTERM)
	<-x2.Done()
	want("0", "after the final stop, as it was before the first run")
	if _, stateDir := h1.XvrrpDirs(); fileExists(filepath.Join(stateDir, "sysctls.json")) {
		t.Error("the record of sysctls to put back is still there after they were put back")
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
