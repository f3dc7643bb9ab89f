package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
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

// TestAddrVMACNames: use_vmac_addr's VMACs, named as keepalived 2.2.7 named
// them in the same configurations (seen by running it): one per interface and
// family other than the instance's own, vmac_addr_prefix (else vmac_prefix,
// else vrrp), 6 for IPv6, a number when the name is taken.
func TestAddrVMACNames(t *testing.T) {
	for _, tc := range []struct {
		name, global, body string
		want               []AddrVMAC
		vipOn              map[string]string // address → VMAC
	}{
		{"vmac_addr_prefix", "vmac_addr_prefix va", `use_vmac
use_vmac_addr
virtual_ipaddress {
192.0.2.1/24
198.51.100.130/25 dev eth2
198.51.100.1/24 dev eth1
}
virtual_ipaddress_excluded {
2001:db8::5/64 dev eth1
}`, []AddrVMAC{
			{"va.51", "eth2", IPv4, "00:00:5e:00:01:33"},
			{"va1.51", "eth1", IPv4, "00:00:5e:00:01:33"},
			{"va6.51", "eth1", IPv6, "00:00:5e:00:02:33"},
		}, map[string]string{"192.0.2.1": "", "198.51.100.130": "va.51", "198.51.100.1": "va1.51", "2001:db8::5": "va6.51"}},
		{"default prefix", "", `use_vmac
use_vmac_addr
virtual_ipaddress {
192.0.2.1/24
198.51.100.1/24 dev eth1
}
virtual_ipaddress_excluded {
2001:db8::5/64
198.51.100.6/24 dev eth1
}`, []AddrVMAC{
			{"vrrp1.51", "eth1", IPv4, "00:00:5e:00:01:33"},
			{"vrrp6.51", "eth0", IPv6, "00:00:5e:00:02:33"},
		}, map[string]string{"198.51.100.1": "vrrp1.51", "198.51.100.6": "vrrp1.51", "2001:db8::5": "vrrp6.51"}},
		{"use_vmac_addr alone", "", `use_vmac_addr
virtual_ipaddress {
192.0.2.1/24
198.51.100.1/24 dev eth1
}`, []AddrVMAC{{"vrrp.51", "eth1", IPv4, "00:00:5e:00:01:33"}}, map[string]string{"192.0.2.1": ""}},
		{"use_vmac on one address", "", `virtual_ipaddress {
192.0.2.1/24
198.51.100.1/24 dev eth1 use_vmac
198.51.100.2/24 dev eth2
}`, []AddrVMAC{{"vrrp.51", "eth1", IPv4, "00:00:5e:00:01:33"}}, map[string]string{"198.51.100.2": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, "global_defs {\n"+tc.global+"\n}\nvrrp_instance VI_1 {\ninterface eth0\nvirtual_router_id 51\n"+tc.body+"\n}\n")
			in := c.Instances[0]
			if diff := cmp.Diff(tc.want, in.AddrVMACs); diff != "" {
				t.Errorf("VMACs (-want +got):\n%s", diff)
			}
			for _, v := range append(in.VIPs, in.ExcludedVIPs...) {
				if want, ok := tc.vipOn[v.Prefix.Addr().String()]; ok && v.VMAC != want {
					t.Errorf("%v on VMAC %q, want %q", v.Prefix, v.VMAC, want)
				}
			}
		})
	}
}
