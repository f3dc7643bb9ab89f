package tests

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// forgedConfig has three instances, so that every forgery has a target: v3
// multicast (VRID 51), v2 with a password (52), v3 unicast between h1 and h2 (53).
func forgedConfig(prio int, self, peer netip.Addr) string {
	return fmt.Sprintf(`global_defs {
    vrrp_garp_master_delay 0
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    priority %[1]d
    version 3
    advert_int 0.1
    virtual_ipaddress {
        192.0.2.1/24
    }
}
vrrp_instance VI_2 {
    interface eth0
    virtual_router_id 52
    priority %[1]d
    version 2
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass s3cr3t
    }
    virtual_ipaddress {
        192.0.2.2/24
    }
}
vrrp_instance VI_3 {
    interface eth0
    virtual_router_id 53
    priority %[1]d
    version 3
    advert_int 0.1
    unicast_src_ip %[2]s
    unicast_peer {
        %[3]s
    }
    virtual_ipaddress {
        192.0.2.3/24
    }
}
`, prio, self, peer)
}

// Proof 7: forged adverts, each claiming priority 254, sent from the client at a
// bounded rate for two seconds, change no state anywhere and are counted by
// reason in the kernel.
func TestForgedAdverts(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
	h1, h2, client := l.Hosts[0], l.Hosts[1], l.Client
	a1, a2 := h1.IPv4.Addr(), h2.IPv4.Addr()
	x1, err := h1.StartXvrrp(xvrrpBin, forgedConfig(150, a1, a2))
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range []string{"VI_1", "VI_2", "VI_3"} {
		waitLog(t, x1, "("+vi+") Entering MASTER STATE")
	}
	x2, err := h2.StartXvrrp(xvrrpBin, forgedConfig(100, a2, a1))
	if err != nil {
		t.Fatal(err)
	}
	for _, vi := range []string{"VI_1", "VI_2", "VI_3"} {
		waitLog(t, x2, "("+vi+") Entering BACKUP STATE (init)")
	}
	time.Sleep(500 * time.Millisecond)
	logs1, logs2 := strings.Count(x1.Output(), "Entering"), strings.Count(x2.Output(), "Entering")

	src := client.IPv4.Addr()
	v3 := func(vrid uint8) vrrp.Advert {
		return vrrp.Advert{Version: 3, VRID: vrid, Priority: 254, Interval: 100 * time.Millisecond,
			Addrs: []netip.Addr{netip.MustParseAddr(fmt.Sprintf("192.0.2.%d", vrid-50))}}
	}
	build := func(a vrrp.Advert, dst netip.Addr, ttl uint8) []byte {
		b, err := a.AppendPacket(nil, src, dst, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wrongPass := vrrp.Advert{Version: 2, VRID: 52, Priority: 254, Interval: time.Second, AuthType: vrrp.AuthPass,
		AuthData: vrrp.Password("guess"), Addrs: []netip.Addr{netip.MustParseAddr("192.0.2.2")}}
	badSum := build(v3(51), vrrp.Group4, 255)
	badSum[20+6] ^= 0xff
	forgeries := []struct {
		name   string
		pkt    []byte
		dst    netip.Addr
		reason vrrp.Reason
		h2too  bool // multicast: h2 sees it as well
	}{
		{"wrong password", build(wrongPass, vrrp.Group4, 255), vrrp.Group4, vrrp.ReasonAuthKey, true},
		{"TTL 254", build(v3(51), vrrp.Group4, 254), vrrp.Group4, vrrp.ReasonTTL, true},
		{"bad checksum", badSum, vrrp.Group4, vrrp.ReasonChecksum, true},
		// Another router's VRID: passed to sockets, counted as foreign.
		{"foreign VRID", build(v3(99), vrrp.Group4, 255), vrrp.Group4, vrrp.ReasonForeign, true},
		{"not a unicast peer", build(v3(53), a1, 255), a1, vrrp.ReasonUnicastPeer, false},
	}

	// 100 of each per second for two seconds: 1000 packets, then stop.
	const rounds = 200
	err = client.WithRawIPv4(func(send func([]byte, netip.Addr) error) error {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for range rounds {
			<-tick.C
			for _, f := range forgeries {
				if err := send(f.pkt, f.dst); err != nil {
					return fmt.Errorf("send %s: %w", f.name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)

	if n := strings.Count(x1.Output(), "Entering"); n != logs1 {
		t.Errorf("h1 changed state under forged adverts:\n%s", x1.Output())
	}
	if n := strings.Count(x2.Output(), "Entering"); n != logs2 {
		t.Errorf("h2 changed state under forged adverts:\n%s", x2.Output())
	}
	for _, h := range []struct {
		name   string
		pinDir string
		all    bool
	}{{"h1", x1.PinDir, true}, {"h2", x2.PinDir, false}} {
		dp, err := loader.Load(loader.Options{PinDir: h.pinDir, Observe: true})
		if err != nil {
			t.Fatal(err)
		}
		c, err := dp.Counters()
		dp.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range forgeries {
			if !h.all && !f.h2too {
				continue
			}
			if got := c[f.reason]; got < rounds {
				t.Errorf("%s: %s counted %d times as %v, want at least %d", h.name, f.name, got, f.reason, rounds)
			}
		}
		t.Logf("%s counters: %v", h.name, c)
	}

	// And for the instance each names, under keepalived's names where
	// keepalived has them.
	var eth0 int
	if err := h1.Netlink(func(nl *netlink.Handle) error {
		l, err := nl.LinkByName("eth0")
		if err == nil {
			eth0 = l.Attrs().Index
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	dp, err := loader.Load(loader.Options{PinDir: x1.PinDir, Observe: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dp.Close()
	per := map[uint8]loader.Counters{}
	for _, vrid := range []uint8{51, 52, 53} {
		if per[vrid], err = dp.InstanceCounters(loader.Key{Ifindex: eth0, VRID: vrid}); err != nil {
			t.Fatal(err)
		}
	}
	if c := per[51]; c.IPTTLErr != rounds || c.Dropped[vrrp.ReasonTTL] != rounds || c.Dropped[vrrp.ReasonChecksum] != rounds {
		t.Errorf("VI_1's counters: %+v, want %d TTL and checksum errors", c, rounds)
	}
	if c := per[52]; c.AuthFailure != rounds || c.Dropped[vrrp.ReasonAuthKey] != rounds {
		t.Errorf("VI_2's counters: %+v, want %d auth failures", c, rounds)
	}
	if c := per[53]; c.Dropped[vrrp.ReasonUnicastPeer] != rounds {
		t.Errorf("VI_3's counters: %+v, want %d from no unicast peer", c, rounds)
	}
}
