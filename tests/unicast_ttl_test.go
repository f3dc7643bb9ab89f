package tests

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// keepalived takes a unicast instance's adverts at any TTL (a unicast peer may
// be routers away), and can send them with unicast_ttl. xvrrp, backup to a
// keepalived master whose unicast adverts carry TTL 64, follows it: before,
// XDP dropped them for their TTL and both were master.
func TestUnicastTTLFromKeepalived(t *testing.T) {
	labtest.Require(t, "keepalived")
	l := labtest.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	unicast := func(self, peer *lab.Host, extra string) string {
		return fmt.Sprintf("unicast_src_ip %s\nunicast_peer {\n %s\n}\n%s", self.IPv4.Addr(), peer.IPv4.Addr(), extra)
	}
	k, err := h1.StartKeepalived(nodeConfig(node{prio: 150, extra: unicast(h1, h2, "unicast_ttl 64")}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, k, "(VI_1) Entering MASTER STATE")
	w, err := h2.Capture("ip proto 112")
	if err != nil {
		t.Fatal(err)
	}
	x, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: unicast(h2, h1, "")}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering BACKUP STATE")
	time.Sleep(time.Second) // six Master_Down_Intervals at 50 ms
	frames, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	ttl64 := 0
	for _, f := range frames {
		// Ethernet, then the IPv4 header: TTL at byte 8, source at 12.
		if len(f.Data) > 34 && f.Data[14+8] == 64 && [4]byte(f.Data[26:30]) == h1.IPv4.Addr().As4() {
			ttl64++
		}
	}
	if ttl64 == 0 {
		t.Fatalf("no advert from keepalived with TTL 64 among %d frames: the test proves nothing", len(frames))
	}
	if strings.Contains(x.Output(), "Entering MASTER STATE") || hasVIP(t, h2, vip4) {
		t.Errorf("xvrrp took over from a master whose %d adverts it received with TTL 64:\n%s", ttl64, x.Output())
	}
}

// unicast_ttl: a unicast master's adverts leave with that TTL, and its backup
// — xvrrp or keepalived — follows it rather than taking over.
func TestUnicastTTLSent(t *testing.T) {
	for _, backupKeepalived := range []bool{false, true} {
		name := "xvrrp backup"
		if backupKeepalived {
			name = "keepalived backup"
		}
		t.Run(name, func(t *testing.T) {
			if backupKeepalived {
				labtest.Require(t, "keepalived")
			}
			l := labtest.New(t, lab.Options{Hosts: 2})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			unicast := func(self, peer *lab.Host, extra string) string {
				return fmt.Sprintf("unicast_src_ip %s\nunicast_peer {\n %s\n}\n%s", self.IPv4.Addr(), peer.IPv4.Addr(), extra)
			}
			x, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: unicast(h1, h2, "unicast_ttl 64")}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x, "(VI_1) Entering MASTER STATE")
			w, err := h2.Capture("ip proto 112")
			if err != nil {
				t.Fatal(err)
			}
			var backup *lab.Proc
			conf := nodeConfig(node{prio: 100, extra: unicast(h2, h1, "")})
			if backupKeepalived {
				k, err := h2.StartKeepalived(conf)
				if err != nil {
					t.Fatal(err)
				}
				backup = k.Proc
			} else {
				b, err := h2.StartXvrrp(xvrrpBin, conf)
				if err != nil {
					t.Fatal(err)
				}
				backup = b.Proc
			}
			waitLog(t, backup, "(VI_1) Entering BACKUP STATE")
			time.Sleep(time.Second) // six Master_Down_Intervals at 50 ms
			frames, err := w.Stop()
			if err != nil {
				t.Fatal(err)
			}
			from, other := 0, 0
			for _, f := range frames {
				if len(f.Data) > 34 && [4]byte(f.Data[26:30]) == h1.IPv4.Addr().As4() {
					if f.Data[14+8] == 64 {
						from++
					} else {
						other++
					}
				}
			}
			if from == 0 || other != 0 {
				t.Errorf("h1's adverts: %d with TTL 64, %d with another TTL; want all at 64", from, other)
			}
			if strings.Contains(backup.Output(), "Entering MASTER STATE") || hasVIP(t, h2, vip4) {
				t.Errorf("the backup took over from a master whose adverts it received with TTL 64:\n%s", backup.Output())
			}
		})
	}
}

// unicast_ttl over IPv6: the hop limit, which the kernel writes, is set per
// advert.
func TestUnicastTTLSentIPv6(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	conf := func(prio int, self, peer *lab.Host, extra string) string {
		return fmt.Sprintf(`vrrp_instance VI_6 {
    interface eth0
    virtual_router_id 61
    priority %d
    advert_int 0.05
    unicast_src_ip %s
    unicast_peer {
        %s
    }
    %s
    virtual_ipaddress {
        2001:db8::61/64
    }
}
`, prio, self.IPv6.Addr(), peer.IPv6.Addr(), extra)
	}
	x1, err := h1.StartXvrrp(xvrrpBin, conf(150, h1, h2, "unicast_ttl 64"))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_6) Entering MASTER STATE")
	w, err := h2.Capture("ip6 proto 112")
	if err != nil {
		t.Fatal(err)
	}
	x2, err := h2.StartXvrrp(xvrrpBin, conf(100, h2, h1, ""))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_6) Entering BACKUP STATE")
	time.Sleep(time.Second)
	frames, err := w.Stop()
	if err != nil {
		t.Fatal(err)
	}
	from, other := 0, 0
	src := h1.IPv6.Addr().As16()
	for _, f := range frames {
		if len(f.Data) > 54 && [16]byte(f.Data[22:38]) == src {
			if f.Data[14+7] == 64 {
				from++
			} else {
				other++
			}
		}
	}
	if from == 0 || other != 0 {
		t.Errorf("h1's adverts: %d with hop limit 64, %d with another; want all at 64", from, other)
	}
	if strings.Contains(x2.Output(), "Entering MASTER STATE") {
		t.Errorf("the backup took over from a master whose adverts it received with hop limit 64:\n%s", x2.Output())
	}
}

// unicast_peer's min_ttl and max_ttl: a backup takes its peer's adverts only
// at a TTL in the range, and drops the others, counted as ttl. The master
// sends at TTL 64 (unicast_ttl); a backup whose range holds 64 follows it, one
// whose range starts at 65 hears nothing it accepts and takes over.
func TestUnicastPeerTTLRange(t *testing.T) {
	for _, tc := range []struct {
		rng      string
		follows  bool
		dropsTTL bool
	}{
		{"min_ttl 64 max_ttl 64", true, false},
		{"max_ttl 100", true, false},
		{"min_ttl 65", false, true},
		{"min_ttl 1 max_ttl 63", false, true},
	} {
		t.Run(tc.rng, func(t *testing.T) {
			l := labtest.New(t, lab.Options{Hosts: 2})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			unicast := func(self, peer *lab.Host, opts, extra string) string {
				return fmt.Sprintf("unicast_src_ip %s\nunicast_peer {\n %s %s\n}\n%s", self.IPv4.Addr(), peer.IPv4.Addr(), opts, extra)
			}
			x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: unicast(h1, h2, "", "unicast_ttl 64")}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, "(VI_1) Entering MASTER STATE")
			x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: unicast(h2, h1, tc.rng, "")}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE")
			time.Sleep(time.Second) // twenty of h1's adverts
			tookOver := strings.Contains(x2.Output(), "Entering MASTER STATE")
			if tookOver == tc.follows {
				t.Errorf("range %s, adverts at TTL 64: took over %v, want %v:\n%s", tc.rng, tookOver, !tc.follows, x2.Output())
			}
			c := counters(t, x2.PinDir)
			if dropped := c[vrrp.ReasonTTL] >= 5; dropped != tc.dropsTTL {
				t.Errorf("range %s: %d adverts dropped as ttl, %d valid", tc.rng, c[vrrp.ReasonTTL], c[vrrp.ReasonValid])
			}
		})
	}
}
