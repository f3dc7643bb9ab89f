package config

import (
	"strings"
	"testing"
)

// TestVMACDefaults: use_vmac's name and MAC as keepalived 2.2.7 makes them
// (vrrp.51 with 00:00:5e:00:01:33 for IPv4, 00:00:5e:00:02:33 for IPv6 — seen
// by running it), vmac_prefix, a named interface, a five-octet MAC, and the
// errors.
func TestVMACDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, global, body string
		wantName, wantMAC  string
		wantXmitBase       bool
	}{
		{"IPv4 default", "", "use_vmac", "vrrp.51", "00:00:5e:00:01:33", false},
		{"IPv6 default", "", "use_vmac", "vrrp.51", "00:00:5e:00:02:33", false},
		{"vmac_prefix", "vmac_prefix vx", "use_vmac\nvmac_xmit_base", "vx.51", "00:00:5e:00:01:33", true},
		{"named", "", "use_vmac vip51", "vip51", "00:00:5e:00:01:33", false},
		{"named with MAC", "", "use_vmac vip51 02:00:00:00:00:07", "vip51", "02:00:00:00:00:07", false},
		{"five octets take the VRID", "", "use_vmac 02:aa:bb:cc:dd", "vrrp.51", "02:aa:bb:cc:dd:33", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vip := "192.0.2.1"
			if strings.HasPrefix(tc.name, "IPv6") {
				vip = "2001:db8::1"
			}
			c := mustParse(t, "global_defs {\n"+tc.global+"\n}\nvrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 51\n"+tc.body+"\nvirtual_ipaddress {\n"+vip+"\n}\n}\n")
			in := c.Instances[0]
			if !in.UseVMAC || in.VMACName != tc.wantName || in.VMACAddr != tc.wantMAC || in.VMACXmitBase != tc.wantXmitBase {
				t.Errorf("use_vmac %v name %q MAC %q xmit_base %v; want name %q MAC %q xmit_base %v",
					in.UseVMAC, in.VMACName, in.VMACAddr, in.VMACXmitBase, tc.wantName, tc.wantMAC, tc.wantXmitBase)
			}
		})
	}
	for _, tc := range []struct{ name, body, want string }{
		{"multicast MAC", "use_vmac 01:00:5e:00:00:01", "k.conf:7: VI_1: use_vmac: '01:00:5e:00:00:01' is not a unicast MAC address"},
		{"bad MAC", "use_vmac 00:zz:5e:00:00:01", "is not a unicast MAC address"},
		{"name too long", "use_vmac abcdefghijklmnop", "use_vmac: 'abcdefghijklmnop' is not an interface name"},
		{"the instance's own interface", "use_vmac eth0", "the VMAC cannot be the instance's interface eth0"},
		{"unicast without vmac_xmit_base", "use_vmac\nunicast_peer {\n192.0.2.12\n}", "use_vmac with unicast peers needs vmac_xmit_base"},
		{"strict with vmac_xmit_base", "use_vmac\nvmac_xmit_base\nstrict_mode", "vmac_xmit_base is not allowed with strict mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("k.conf", instance(base+"\n"+tc.body))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v; want one with %q", err, tc.want)
			}
		})
	}
}
