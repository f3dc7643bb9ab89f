package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// dont_track_primary: the instance's own interface going down (carrier lost,
// or set down) is no FAULT, as with keepalived 2.2.7, which runs beside it on
// the same kind of host as the reference; without it, both enter FAULT.
func TestDontTrackPrimary(t *testing.T) {
	for _, tc := range []struct {
		name       string
		keepalived bool
		extra      string
		fault      bool
	}{
		{"xvrrp", false, "    dont_track_primary", false},
		{"xvrrp without it", false, "", true},
		{"keepalived 2.2.7", true, "    dont_track_primary", false},
		{"keepalived 2.2.7 without it", true, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.keepalived {
				labtest.Require(t, "keepalived")
			}
			l := labtest.New(t, lab.Options{Hosts: 1})
			h := l.Hosts[0]
			conf := nodeConfig(node{prio: 100, extra: tc.extra})
			var p *lab.Proc
			if tc.keepalived {
				k, err := h.StartKeepalived(conf)
				if err != nil {
					t.Fatal(err)
				}
				p = k.Proc
			} else {
				x, err := h.StartXvrrp(xvrrpBin, conf)
				if err != nil {
					t.Fatal(err)
				}
				p = x.Proc
			}
			waitLog(t, p, "(VI_1) Entering MASTER STATE")
			for _, cut := range []struct {
				name     string
				down, up func() error
			}{
				{"carrier lost", h.Cut, h.Restore},
				{"set down", func() error { return h.SetLinkDown("eth0") }, func() error { return h.SetLinkUp("eth0") }},
			} {
				if err := cut.down(); err != nil {
					t.Fatal(err)
				}
				if tc.fault {
					waitLog(t, p, "(VI_1) Entering FAULT STATE")
				} else {
					time.Sleep(time.Second) // twenty intervals
				}
				if err := cut.up(); err != nil {
					t.Fatal(err)
				}
				if tc.fault {
					break // back from FAULT is other tests' business
				}
				time.Sleep(300 * time.Millisecond)
				if strings.Contains(p.Output(), "FAULT") || strings.Count(p.Output(), "Entering MASTER STATE") != 1 {
					t.Fatalf("%s with dont_track_primary: want no FAULT and one mastership:\n%s", cut.name, p.Output())
				}
			}
			if !tc.fault && !tc.keepalived && !hasVIP(t, h, vip4) {
				t.Errorf("the master lost its VIP:\n%s", p.Output())
			}
		})
	}
}

// keepalived compares the addresses of every advert with its own
// virtual_ipaddress (count and each address) and ignores an advert that
// differs, so its backup takes over; with skip_check_adv_addr (or the global
// vrrp_skip_check_adv_addr) a backup checks only a new master's adverts.
// The master, xvrrp, adds a VIP by SIGHUP; its backup — xvrrp, or keepalived
// 2.2.7 for reference — takes over without the keyword and follows with it.
func TestAdvertAddressCheck(t *testing.T) {
	for _, tc := range []struct {
		name             string
		keepalived       bool
		global, instance string
		takesOver        bool
	}{
		{"xvrrp", false, "", "", true},
		{"xvrrp, skip_check_adv_addr", false, "", "    skip_check_adv_addr", false},
		{"xvrrp, vrrp_skip_check_adv_addr", false, "    vrrp_skip_check_adv_addr", "", false},
		{"xvrrp, global on, instance off", false, "    vrrp_skip_check_adv_addr", "    skip_check_adv_addr off", true},
		{"keepalived 2.2.7", true, "", "", true},
		{"keepalived 2.2.7, skip_check_adv_addr", true, "", "    skip_check_adv_addr", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.keepalived {
				labtest.Require(t, "keepalived")
			}
			l := labtest.New(t, lab.Options{Hosts: 2})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150}))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, "(VI_1) Entering MASTER STATE")
			conf := nodeConfig(node{prio: 100, global: tc.global, extra: tc.instance})
			var backup *lab.Proc
			var pinDir string
			if tc.keepalived {
				k, err := h2.StartKeepalived(conf)
				if err != nil {
					t.Fatal(err)
				}
				backup = k.Proc
			} else {
				x2, err := h2.StartXvrrp(xvrrpBin, conf)
				if err != nil {
					t.Fatal(err)
				}
				backup, pinDir = x2.Proc, x2.PinDir
			}
			waitLog(t, backup, "(VI_1) Entering BACKUP STATE")
			time.Sleep(500 * time.Millisecond)
			if strings.Contains(backup.Output(), "Entering MASTER STATE") {
				t.Fatalf("the backup took over before the master's addresses changed:\n%s", backup.Output())
			}
			// The master now advertises 192.0.2.1 and 192.0.2.9.
			reloadWith(t, x1, nodeConfig(node{prio: 150, extra: "    virtual_ipaddress {\n        192.0.2.9/24\n    }"}), "configuration reloaded", 1)
			time.Sleep(time.Second) // twenty adverts
			tookOver := strings.Contains(backup.Output(), "Entering MASTER STATE")
			if tookOver != tc.takesOver {
				t.Errorf("backup took over: %v, want %v:\n%s", tookOver, tc.takesOver, backup.Output())
			}
			if pinDir != "" {
				c := counters(t, pinDir)
				if dropped := c[vrrp.ReasonAddrCount] > 0; dropped != tc.takesOver {
					t.Errorf("backup's addr_count drops: %d, want some: %v", c[vrrp.ReasonAddrCount], tc.takesOver)
				}
			}
		})
	}
}
