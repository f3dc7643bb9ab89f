package tests

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
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

var vip6 = netip.MustParseAddr("2001:db8::1")

func v6Config(prio int) string {
	return fmt.Sprintf(`global_defs {
    vrrp_garp_master_delay 0
}
vrrp_instance VI_6 {
    state BACKUP
    interface eth0
    virtual_router_id 61
    priority %d
    version 3
    advert_int 0.05
    virtual_ipaddress {
        2001:db8::1/64
    }
}
`, prio)
}

// An IPv6 instance end to end: adverts from the link-local address with hop
// limit 255 to ff02::12; the VIP is added without duplicate address detection
// (DAD is on in this test, so it would otherwise be tentative for a second);
// after the master's link is cut the backup takes over and announces the VIP with
// an unsolicited neighbour advertisement, and the client's probes follow it.
func TestIPv6Instance(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
		err := h.Do(func() error {
			return os.WriteFile("/proc/sys/net/ipv6/conf/eth0/accept_dad", []byte("1"), 0)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	capture, err := l.Client.Capture("ip6 proto 112 or icmp6")
	if err != nil {
		t.Fatal(err)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, v6Config(150))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_6) Entering MASTER STATE")
	x2, err := h2.StartXvrrp(xvrrpBin, v6Config(100))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_6) Entering BACKUP STATE (init)")
	p, err := l.Client.StartProber(vip6, 5*time.Millisecond, 4000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	answeredBy(t, p, "h1")

	if err := h1.Cut(); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	waitLog(t, x2, "(VI_6) Entering MASTER STATE")
	answeredBy(t, p, "h2")
	outage, _ := p.Outage(cut.Add(-10 * time.Millisecond))
	p.Stop()
	frames, err := capture.Stop()
	if err != nil {
		t.Fatal(err)
	}

	flags := vipFlags(t, h2, vip6)
	if flags&unix.IFA_F_NODAD == 0 || flags&unix.IFA_F_TENTATIVE != 0 {
		t.Errorf("h2's VIP has flags %#x, want nodad and not tentative", flags)
	}
	adverts := map[string]int{}
	var na bool
	for _, f := range frames {
		if pkt, err := vrrp.DecodeFrame(f.Data); err == nil {
			if !pkt.Src.IsLinkLocalUnicast() || pkt.Dst != vrrp.Group6 || pkt.TTL != 255 || pkt.VRID != 61 ||
				len(pkt.Addrs) != 1 || pkt.Addrs[0] != vip6 {
				t.Errorf("advert %v → %v hop limit %d VRID %d addresses %v", pkt.Src, pkt.Dst, pkt.TTL, pkt.VRID, pkt.Addrs)
			}
			adverts[string(f.Data[6:12])]++
			continue
		}
		// An unsolicited NA (ICMPv6 136) from h2 for the VIP with the override
		// flag: Ethernet 14 + IPv6 40, then type, code, checksum, flags, target.
		if len(f.Data) >= 14+40+24 && f.Data[14+6] == 58 && f.Data[54] == 136 &&
			bytes.Equal(f.Data[6:12], h2.MAC) && f.Data[58]&0x20 != 0 &&
			bytes.Equal(f.Data[62:78], vip6.AsSlice()) {
			na = true
		}
	}
	if adverts[string(h1.MAC)] == 0 || adverts[string(h2.MAC)] == 0 {
		t.Errorf("adverts captured: %d from h1, %d from h2", adverts[string(h1.MAC)], adverts[string(h2.MAC)])
	}
	if !na {
		t.Error("no unsolicited neighbour advertisement for the VIP from h2")
	}
	t.Logf("outage after the cut: %v", outage)
	if err := x2.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-x2.Done()
	if hasVIP(t, h2, vip6) {
		t.Error("the IPv6 VIP stayed on h2 after a clean stop")
	}
}

// vipFlags are the address's IFA_F_* flags on the host, failing if it is absent.
func vipFlags(t *testing.T, h *lab.Host, addr netip.Addr) int {
	t.Helper()
	flags := -1
	err := h.Netlink(func(nh *netlink.Handle) error {
		addrs, err := nh.AddrList(nil, netlink.FAMILY_V6)
		for _, a := range addrs {
			if a.IP.Equal(addr.AsSlice()) {
				flags = a.Flags
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if flags < 0 {
		t.Fatalf("%s does not have %v", h.Name, addr)
	}
	return flags
}

// TestIPv6AdvertFitsMTU: an IPv6 instance whose advert would be larger than
// its interface's MTU (91 VIPs at 1500: 1504 bytes) is refused at start with
// file:line and the limit, instead of sending fragments no router takes as
// adverts; 90 VIPs fit, and the instance runs.
func TestIPv6AdvertFitsMTU(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 1})
	h1 := l.Hosts[0]
	conf := func(n int) string {
		var vips strings.Builder
		for i := range n {
			fmt.Fprintf(&vips, "        2001:db8::%x:1/64\n", 0x100+i)
		}
		return strings.Replace(v6Config(150), "        2001:db8::1/64\n", vips.String(), 1)
	}
	x, err := h1.StartXvrrp(xvrrpBin, conf(91))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-x.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("started with 91 IPv6 VIPs:\n%s", x.Output())
	}
	if !strings.Contains(x.Output(), "keepalived.conf:4: 91 IPv6 VIPs make an advert of 1504 bytes, more than the MTU of eth0 (1500)") ||
		!strings.Contains(x.Output(), "at most 90 VIPs") {
		t.Errorf("want a refusal naming file:line and the limit:\n%s", x.Output())
	}
	x, err = h1.StartXvrrp(xvrrpBin, conf(90))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_6) Entering MASTER STATE")
	stopClean(t, x)
}
