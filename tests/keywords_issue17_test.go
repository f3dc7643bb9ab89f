package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
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
