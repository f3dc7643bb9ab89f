package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// TestKeywordResolution: keywords whose whole effect is on the configuration
// run gets (a default, a resolved setting, a refusal or a warning) have it.
func TestKeywordResolution(t *testing.T) {
	one := func(t *testing.T, c *Config) *Instance {
		t.Helper()
		if len(c.Instances) != 1 {
			t.Fatalf("%d instances", len(c.Instances))
		}
		return c.Instances[0]
	}
	warned := func(c *Config, s string) bool {
		for _, w := range c.Warnings {
			if strings.Contains(w.Msg, s) {
				return true
			}
		}
		return false
	}
	t.Run("default_interface", func(t *testing.T) {
		c := mustParse(t, "global_defs {\ndefault_interface eth7\n}\n"+instance("virtual_router_id 51\nvirtual_ipaddress {\n192.0.2.1\n}"))
		if in := one(t, c); in.Interface != "eth7" {
			t.Errorf("interface %q, want the default eth7", in.Interface)
		}
	})
	t.Run("script_user", func(t *testing.T) {
		c := mustParse(t, "global_defs {\nscript_user nobody nogroup\n}\n"+instance(base))
		if c.Global.ScriptUser != "nobody" || c.Global.ScriptGroup != "nogroup" {
			t.Errorf("script user %q group %q", c.Global.ScriptUser, c.Global.ScriptGroup)
		}
	})
	for _, strict := range []string{"global_defs {\nvrrp_strict\n}\n" + instance(base), instance(base + "\nstrict_mode")} {
		t.Run("strict "+strings.Fields(strict)[0], func(t *testing.T) {
			in := one(t, mustParse(t, strict))
			if !in.Strict || in.Accept {
				t.Errorf("strict %v accept %v, want strict without accept mode", in.Strict, in.Accept)
			}
			_, err := Parse("k.conf", strings.Replace(strict, "192.0.2.1\n}", "192.0.2.1\n}\nunicast_peer {\n192.0.2.2\n}", 1))
			if err == nil || !strings.Contains(err.Error(), "unicast peers are not allowed with strict mode") {
				t.Errorf("unicast peers in strict mode: %v", err)
			}
		})
	}
	t.Run("vrrp_notify_fifo", func(t *testing.T) {
		c := mustParse(t, "global_defs {\nvrrp_notify_fifo /run/f\nvrrp_notify_fifo_script /bin/reader\n}\n"+instance(base))
		f := c.Global.VRRPNotifyFifo
		if f == nil || f.Path != "/run/f" || f.Script == nil || f.Script.Line != "/bin/reader" {
			t.Errorf("vrrp notify fifo %+v", f)
		}
	})
	t.Run("notify_priority_changes", func(t *testing.T) {
		c := mustParse(t, "global_defs {\nvrrp_notify_priority_changes\n}\n"+instance(base))
		if !one(t, c).Notify.PriorityChanges {
			t.Error("vrrp_notify_priority_changes not the instance's default")
		}
	})
	t.Run("no_preempt", func(t *testing.T) {
		if one(t, mustParse(t, instance(base+"\nno_preempt"))).Preempt {
			t.Error("preempt after no_preempt")
		}
	})
	t.Run("mcast_src_ip", func(t *testing.T) {
		in := one(t, mustParse(t, instance(base+"\nmcast_src_ip 192.0.2.9")))
		if in.McastSrcIP != netip.MustParseAddr("192.0.2.9") {
			t.Errorf("mcast_src_ip %v", in.McastSrcIP)
		}
		if _, err := Parse("k.conf", instance(base+"\nmcast_src_ip 2001:db8::9")); err == nil {
			t.Error("an IPv6 mcast_src_ip for an IPv4 instance was accepted")
		}
	})
	t.Run("deprecated", func(t *testing.T) {
		c := mustParse(t, instance(base+"\nnative_ipv6\ndebug"))
		if !warned(c, "native_ipv6 is deprecated") || !warned(c, "debug: keepalived never implemented it") {
			t.Errorf("warnings %v, want native_ipv6 and debug", c.Warnings)
		}
	})
	t.Run("sync group", func(t *testing.T) {
		c := mustParse(t, `vrrp_script s {
script /bin/true
}
vrrp_track_file f {
file /f
}
vrrp_track_process p {
process p
}
vrrp_sync_group G {
group {
VI_1
}
track_interface {
eth1 weight -5
}
track_file {
f
}
track_process {
p
}
notify_priority_changes
global_tracking
}
`+instance(base))
		g := c.SyncGroups[0]
		if len(g.TrackInterfaces) != 1 || g.TrackInterfaces[0].Weight != -5 || len(g.TrackFiles) != 1 || len(g.TrackProcesses) != 1 ||
			!g.Notify.PriorityChanges || !g.TrackingWeight || !warned(c, "global_tracking is deprecated") {
			t.Errorf("sync group %+v, warnings %v", g, c.Warnings)
		}
		if _, err := Parse("k.conf", "vrrp_sync_group G {\ngroup {\nVI_1\n}\ntrack_file {\nnone\n}\n}\n"+instance(base)); err == nil {
			t.Error("a sync group tracking an undefined file was accepted")
		}
	})
}

// virtual_routes and virtual_rules lines: what xvrrp reads from each, and the
// parts it refuses at file:line.
func TestRouteAndRuleSyntax(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Route
		err  string
	}{
		{line: "198.51.100.0/24 via 192.0.2.254 dev eth0", want: Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Via: netip.MustParseAddr("192.0.2.254"), Dev: "eth0"}},
		{line: "src 192.0.2.1 to 198.51.100.7 gw 192.0.2.254 table 100 metric 5 onlink",
			want: Route{Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParsePrefix("198.51.100.7/32"), Via: netip.MustParseAddr("192.0.2.254"), Table: 100, Metric: 5, OnLink: true}},
		{line: "blackhole 198.51.100.128/25", want: Route{Type: "blackhole", Dst: netip.MustParsePrefix("198.51.100.128/25")}},
		{line: "2001:db8:1::/48 via 2001:db8::fe scope global", want: Route{Dst: netip.MustParsePrefix("2001:db8:1::/48"), Via: netip.MustParseAddr("2001:db8::fe"), Scope: "global"}},
		{line: "198.51.100.0/24 via 192.0.2.1 or 192.0.2.2", err: "k.conf:8: virtual_routes: not implemented: 'or' in a route"},
		{line: "198.51.100.0/24", err: "k.conf:8: virtual_routes: a route needs via/gw or dev"},
		{line: "198.51.100.0/24 via 2001:db8::1", err: "of different families"},
		{line: "via 192.0.2.1", err: "no destination prefix"},
	} {
		c, err := Parse("k.conf", instance(base+"\nvirtual_routes {\n"+tc.line+"\n}"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		got := c.Instances[0].Routes[0]
		got.Pos, got.Words = Pos{}, nil
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.line, got, tc.want)
		}
	}
	for _, tc := range []struct {
		line string
		want Rule
		err  string
	}{
		{line: "from 192.0.2.0/24 table 100", want: Rule{From: netip.MustParsePrefix("192.0.2.0/24"), Table: 100, Family: IPv4}},
		{line: "from all to 2001:db8::/64 iif eth0 fwmark 0x10/0xff preference 50 lookup main",
			want: Rule{To: netip.MustParsePrefix("2001:db8::/64"), IIf: "eth0", FwMark: 16, FwMask: 255, HasFwMark: true, Priority: 50, Table: 254, Family: IPv6}},
		{line: "from 192.0.2.0/24", err: "k.conf:8: virtual_rules: a rule needs a table"},
		{line: "from 192.0.2.0/24 table 1 not", err: "not needs a value"},
		{line: "from 192.0.2.0/24 table 1 uidrange 1-2", err: "not implemented: 'uidrange' in a rule"},
	} {
		c, err := Parse("k.conf", instance(base+"\nvirtual_rules {\n"+tc.line+"\n}"))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", tc.line, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.line, err)
			continue
		}
		got := c.Instances[0].Rules[0]
		got.Pos, got.Words = Pos{}, nil
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: %+v, want %+v", tc.line, got, tc.want)
		}
	}
}
