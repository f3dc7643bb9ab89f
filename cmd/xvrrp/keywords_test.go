package main

import (
	"strconv"
	"strings"
	"testing"
)

// check says, per instance, what the keywords held with mastership will do.
func TestCheckPrintsMastershipExtras(t *testing.T) {
	p := writeConf(t, `global_defs {
  dynamic_interfaces
  vrrp_garp_interval 0.01
  vrrp_gna_interval 0.02
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  virtual_ipaddress {
    192.0.2.1/24
  }
  virtual_ipaddress_excluded {
    2001:db8::7/64
  }
  virtual_routes {
    198.51.100.0/24 via 192.0.2.254
  }
  virtual_rules {
    from 192.0.2.0/24 table 100
  }
  lower_prio_no_advert
  higher_prio_send_advert
  garp_extra_if 60
}
`)
	code, out, errOut := runCLI(t, "check", "-f", p)
	unicast := writeConf(t, "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  unicast_ttl 64\n  unicast_peer {\n    192.0.2.12\n  }\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n}\n")
	_, uout, _ := runCLI(t, "check", "-f", unicast)
	if !strings.Contains(uout, "  unicast from the interface's address to 192.0.2.12, sent at TTL 64, peers' adverts taken at any TTL, from them only\n") {
		t.Errorf("check does not say how unicast adverts are sent and taken:\n%s", uout)
	}
	if code != 0 {
		t.Fatalf("check exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		", an instance whose interface is missing waits for it (dynamic_interfaces), gratuitous ARP rounds 10ms apart, unsolicited NA rounds 20ms apart\n",
		"  while master, a gratuitous ARP every 1m0s on interfaces other than eth0 (garp_extra_if)\n",
		"  gratuitous ARPs: 5 on becoming master, 5 after 5s; 5 on hearing a lower priority master, 5 after 5s\n",
		"  VIP 2001:db8::7/64 (not advertised; held while master, put back if removed)\n",
		"  route 198.51.100.0/24 via 192.0.2.254 (installed while master, put back if removed)\n",
		"  rule from 192.0.2.0/24 table 100 (installed while master, put back if removed)\n",
		"  as master, no advert in answer to a lower priority master's (lower_prio_no_advert)\n",
		"  as master, one advert before stepping down for a higher priority (higher_prio_send_advert)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// check says what v3_checksum_as_v2 and a unicast peer's min_ttl/max_ttl do,
// and refuses a range no advert could arrive in.
func TestCheckPrintsPacketOptions(t *testing.T) {
	conf := func(version int, extra, peer string) string {
		return "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  version " + strconv.Itoa(version) + "\n" + extra +
			"\n  unicast_peer {\n    " + peer + "\n    192.0.2.13\n  }\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n}\n"
	}
	code, out, errOut := runCLI(t, "check", "-f", writeConf(t, conf(3, "  v3_checksum_as_v2\n  dont_track_primary", "192.0.2.12 min_ttl 250 max_ttl 254")))
	if code != 0 {
		t.Fatalf("check exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"peers' adverts taken at any TTL unless narrowed below, from them only\n",
		"  adverts from 192.0.2.12 taken only at TTL 250 to 254, others dropped and counted as ttl (min_ttl, max_ttl)\n",
		"  VRRPv3 checksum over the message alone, no IPv4 pseudo-header: sent so, and adverts with the pseudo-header form dropped as checksum (v3_checksum_as_v2)\n",
		"  eth0 down is no FAULT; the VIPs are fenced while adverts cannot leave (dont_track_primary)\n",
		"  adverts must carry exactly its virtual_ipaddress list, or are dropped as addr_count\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "adverts from 192.0.2.13") {
		t.Errorf("a peer without min_ttl/max_ttl is said to be narrowed:\n%s", out)
	}
	_, out, _ = runCLI(t, "check", "-f", writeConf(t, conf(2, "  v3_checksum_as_v2 on", "192.0.2.12 min_ttl 64")))
	if !strings.Contains(out, "  v3_checksum_as_v2 changes nothing here: it is for VRRPv3 over IPv4\n") ||
		!strings.Contains(out, "taken only at TTL 64 to 255") {
		t.Errorf("VRRPv2 with v3_checksum_as_v2, min_ttl alone:\n%s", out)
	}
	_, out, _ = runCLI(t, "check", "-f", writeConf(t, conf(3, "  v3_checksum_as_v2 off\n  skip_check_adv_addr", "192.0.2.12")))
	if strings.Contains(out, "v3_checksum_as_v2") {
		t.Errorf("v3_checksum_as_v2 off still printed:\n%s", out)
	}
	if !strings.Contains(out, "  adverts must carry exactly its virtual_ipaddress list, checked for a new master's only (skip_check_adv_addr)\n") {
		t.Errorf("skip_check_adv_addr not printed:\n%s", out)
	}
	for _, tc := range []struct{ extra, peer, want string }{
		{"", "192.0.2.12 min_ttl 200 max_ttl 100", ":7: unicast_peer 192.0.2.12: min_ttl 200 is above max_ttl 100: no advert could arrive"},
		{"", "192.0.2.12 max_ttl 256", ":7: unicast_peer 192.0.2.12: max_ttl '256' is not 0 to 255"},
		{"  v3_checksum_as_v2 maybe", "192.0.2.12", ":5: v3_checksum_as_v2: 'maybe' is not one of on, off, true, false, yes, no"},
	} {
		code, _, errOut := runCLI(t, "check", "-f", writeConf(t, conf(3, tc.extra, tc.peer)))
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q %q: exit %d, %s; want an error ending %q", tc.extra, tc.peer, code, errOut, tc.want)
		}
	}
}

// check says which addresses, routes and rules no_track leaves removed.
func TestCheckPrintsNoTrack(t *testing.T) {
	p := writeConf(t, `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  virtual_ipaddress {
    192.0.2.1/24 no_track
    192.0.2.2/24
  }
  virtual_ipaddress_excluded {
    192.0.2.7/24 no_track
  }
  virtual_routes {
    198.51.100.0/24 dev eth0 no_track
  }
  virtual_rules {
    from 192.0.2.0/24 table 100 no_track
  }
}
`)
	code, out, errOut := runCLI(t, "check", "-f", p)
	if code != 0 {
		t.Fatalf("check exit %d:\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"  VIP 192.0.2.1/24 no_track (if removed, not put back until the next mastership (no_track))\n",
		"  VIP 192.0.2.2/24\n",
		"  VIP 192.0.2.7/24 no_track (not advertised; held while master, if removed, not put back until the next mastership (no_track))\n",
		"  route 198.51.100.0/24 dev eth0 no_track (installed while master, if removed, not put back until the next mastership (no_track))\n",
		"  rule from 192.0.2.0/24 table 100 no_track (installed while master, if removed, not put back until the next mastership (no_track))\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
}

// dynamic_interfaces allow_if_changes is refused at its line: keepalived's
// relaxed duplicate VRID check is not implemented.
func TestCheckRefusesAllowIfChanges(t *testing.T) {
	p := writeConf(t, "global_defs {\n  dynamic_interfaces allow_if_changes\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n}\n")
	code, _, errOut := runCLI(t, "check", "-f", p)
	if want := ":2: dynamic_interfaces allow_if_changes: not implemented"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("exit %d, %s; want an error with %q", code, errOut, want)
	}
}

// check says when startup_script and shutdown_script run and their timeouts.
func TestCheckPrintsHookScripts(t *testing.T) {
	p := writeConf(t, "global_defs {\n  startup_script \"/bin/echo up\"\n  shutdown_script /bin/true\n  shutdown_script_timeout 3\n}\nvrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n}\n")
	code, out, errOut := runCLI(t, "check", "-f", p)
	want := `, startup_script "/bin/echo up" before the instances start (killed after 10s), shutdown_script "/bin/true" after they stop (killed after 3s)`
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d, %s%s; want %q", code, out, errOut, want)
	}
}

// garp_group: check prints the spacing it gives the instances of its
// interface, and refuses interfaces { … } at its line.
func TestCheckGarpGroup(t *testing.T) {
	inst := "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    192.0.2.1/24\n  }\n}\n"
	code, out, errOut := runCLI(t, "check", "-f", writeConf(t, "garp_group {\n  garp_interval 0.02\n  interface eth0\n}\n"+inst))
	if want := "  rounds of gratuitous ARPs 20ms apart, of unsolicited NAs 0s apart (garp_group eth0)\n"; code != 0 || !strings.Contains(out, want) {
		t.Errorf("exit %d, %s%s; want %q", code, out, errOut, want)
	}
	code, _, errOut = runCLI(t, "check", "-f", writeConf(t, "garp_group {\n  garp_interval 0.02\n  interfaces {\n    eth0\n  }\n}\n"+inst))
	if want := ":3: garp_group interfaces: not implemented"; code != 1 || !strings.Contains(errOut, want) {
		t.Errorf("interfaces: exit %d, %s; want %q", code, errOut, want)
	}
}
