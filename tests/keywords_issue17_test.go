package tests

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
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

// dynamic_interfaces: an instance whose interface does not exist at start
// waits for it instead of failing the daemon's start; once the interface
// exists and has an address to send from, the instance runs (here alone, so
// it becomes master and its VIP is on the new interface). Without it, the
// start fails naming the interface.
func TestDynamicInterfaces(t *testing.T) {
	conf := func(global string) string {
		return "global_defs {\n" + global + "\n}\nvrrp_instance VI_1 {\n    interface eth9\n    virtual_router_id 51\n    priority 100\n    version 3\n    advert_int 0.05\n    virtual_ipaddress {\n        198.51.100.1/24\n    }\n}\n"
	}
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]

	x, err := h.StartXvrrp(xvrrpBin, conf(""))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-x.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("started without eth9 and without dynamic_interfaces")
	}
	if !strings.Contains(x.Output(), "eth9") {
		t.Errorf("the failed start does not name eth9:\n%s", x.Output())
	}

	x, err = h.StartXvrrp(xvrrpBin, conf("    dynamic_interfaces"))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) interface eth9 does not exist: waiting for it (dynamic_interfaces)")
	time.Sleep(300 * time.Millisecond)
	if strings.Contains(x.Output(), "Entering") {
		t.Fatalf("the instance ran without its interface:\n%s", x.Output())
	}
	// keepalived shows an instance waiting for its interface in FAULT.
	if st := status(t, h, x).Instances[0]; st.Name != "VI_1" || st.State != "FAULT" || !strings.Contains(st.Fault, "eth9") {
		t.Errorf("status of the waiting instance: %+v, want VI_1 in FAULT naming eth9", st)
	}
	// The interface first, its address a moment later: the instance waits
	// for both.
	err = h.Netlink(func(nh *netlink.Handle) error {
		if err := nh.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth9"}, PeerName: "eth9p"}); err != nil {
			return err
		}
		for _, n := range []string{"eth9", "eth9p"} {
			lnk, err := nh.LinkByName(n)
			if err != nil {
				return err
			}
			if err := nh.LinkSetUp(lnk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	err = h.Netlink(func(nh *netlink.Handle) error {
		lnk, err := nh.LinkByName("eth9")
		if err != nil {
			return err
		}
		a, _ := netlink.ParseAddr("198.51.100.10/24")
		return nh.AddrAdd(lnk, a)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) interface eth9 appeared: starting the instance")
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
	if !hasVIP(t, h, netip.MustParseAddr("198.51.100.1")) {
		t.Errorf("master without its VIP:\n%s", x.Output())
	}
}

// startup_script and shutdown_script run once, before the instances start and
// after they stop, as keepalived runs them around its children; a script past
// its timeout is killed and the daemon goes on.
func TestStartupShutdownScripts(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	script := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$1\" >> "+out+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	l := labtest.New(t, lab.Options{Hosts: 1})
	h := l.Hosts[0]
	x, err := h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, global: "    script_user root\n    startup_script \"" + script + " start\"\n    shutdown_script \"" + script + " stop\"\n    shutdown_script_timeout 5"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
	log := x.Output()
	if i, j := strings.Index(log, "startup_script "+script+" start done"), strings.Index(log, "xvrrp running"); i < 0 || j < 0 || i > j {
		t.Errorf("startup_script not done before the daemon ran:\n%s", log)
	}
	if b, _ := os.ReadFile(out); string(b) != "start\n" {
		t.Errorf("after start, the scripts wrote %q, want the startup script's line", b)
	}
	if err := x.Stop(5 * time.Second); err != nil {
		t.Logf("stop: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "start\nstop\n" {
		t.Errorf("after stop, the scripts wrote %q, want start then stop", b)
	}
	if i, j := strings.Index(x.Output(), "(VI_1) Entering"), strings.LastIndex(x.Output(), "shutdown_script "+script+" stop done"); j < i {
		t.Errorf("shutdown_script not run after the instances:\n%s", x.Output())
	}

	// A startup script that would run 30 s, with a timeout of 1 s.
	x, err = h.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, global: "    script_user root\n    startup_script \"/bin/sleep 30\"\n    startup_script_timeout 1"}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x, "startup_script /bin/sleep 30 timed out after 1s: killed")
	waitLog(t, x, "(VI_1) Entering MASTER STATE")
}
