package config

import (
	"net/netip"
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
