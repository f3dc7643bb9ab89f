package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
)

const full = `! a configuration using most of what xvrrp reads
global_defs {
   router_id lb-1            # comments after values
   vrrp_version 3
   vrrp_mcast_group4 224.0.0.19
   vrrp_garp_master_delay 2
   vrrp_garp_master_repeat 3
   vrrp_garp_master_refresh 60
   vrrp_startup_delay 1.5
   enable_script_security
   script_user nobody nogroup
   notification_email {
      ops@example.org
   }
   smtp_server 192.0.2.250
}

vrrp_script chk_nginx {
    script "/usr/bin/pgrep -x nginx"
    interval 2
    timeout 1
    weight -30
    rise 2
    fall 3
}

vrrp_track_process nginx {
    process nginx
    quorum 2
    weight -40
}

track_file maint {
    file /run/xvrrp/maint
    weight -1
}

vrrp_instance VI_web
{
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.05
    nopreempt
    unicast_src_ip 192.0.2.11
    unicast_peer {
        192.0.2.12
        192.0.2.13
    }
    virtual_ipaddress {
        192.0.2.1/24 dev eth0 label eth0:vip
        192.0.2.2
    }
    track_interface {
        eth1 weight -20
        eth2
    }
    track_script {
        chk_nginx
    }
    track_process {
        nginx weight -10 reverse
    }
    track_file {
        maint
    }
    notify_master "/etc/xvrrp/notify.sh MASTER" root
    notify /etc/xvrrp/notify-any.sh
}

vrrp_instance VI_v2 { interface eth0; virtual_router_id 52
    version 2
    authentication {
        auth_type PASS
        auth_pass s3cretpassword
    }
    virtual_ipaddress { 192.0.2.3 }
}

vrrp_sync_group G {
    group {
        VI_web
        VI_v2
    }
    notify_fault "/etc/xvrrp/fault.sh"
}
`

// asWritten is a Tracking for Print in this package's tests, which cannot
// import package health (it imports this one): each reference with the
// weight it gives, and no range.
type asWritten struct{}

func (asWritten) InstanceTrackers(in *Instance) []Effect {
	return refs(in.TrackInterfaces, in.TrackScripts, in.TrackFiles, in.TrackProcesses)
}

func (asWritten) GroupTrackers(g *SyncGroup) []Effect {
	return refs(g.TrackInterfaces, g.TrackScripts, g.TrackFiles, g.TrackProcesses)
}

func (asWritten) Range(in *Instance) (lo, hi uint8, canFault bool) {
	return in.Priority, in.Priority, false
}

func refs(ti []TrackInterface, ts, tf, tp []TrackRef) []Effect {
	var out []Effect
	for _, t := range ti {
		out = append(out, Effect{"track_interface", t.Name, t.Weight, t.Reverse})
	}
	for kw, rs := range map[string][]TrackRef{"track_script": ts, "track_file": tf, "track_process": tp} {
		for _, t := range rs {
			e := Effect{kw, t.Name, 0, t.Reverse}
			if t.Weight != nil {
				e.Weight = *t.Weight
			}
			out = append(out, e)
		}
	}
	return out
}

func mustParse(t *testing.T, text string) *Config {
	t.Helper()
	c, err := Parse("/etc/keepalived/keepalived.conf", text)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

func TestParseFull(t *testing.T) {
	// "interface eth0; virtual_router_id 52" is one line in keepalived's eyes
	// with an odd interface name: keep the test to what keepalived means.
	c, err := Parse("/etc/keepalived/keepalived.conf", strings.Replace(full, "interface eth0; virtual_router_id 52", "interface eth0\nvirtual_router_id 52", 1))
	if err != nil {
		t.Fatal(err)
	}
	g := c.Global
	if g.RouterID != "lb-1" || g.Version != 3 || g.McastGroup4 != netip.MustParseAddr("224.0.0.19") ||
		g.Garp.MasterDelay != 2*time.Second || g.Garp.MasterRepeat != 3 || g.Garp.MasterRefresh != time.Minute ||
		g.StartupDelay != 1500*time.Millisecond || !g.EnableScriptSecurity || g.ScriptUser != "nobody" ||
		g.ScriptGroup != "nogroup" {
		t.Errorf("global_defs = %+v", g)
	}
	if len(c.Warnings) != 3 || !strings.Contains(c.Warnings[0].Msg, "notification_email is for keepalived's SMTP alerts") ||
		c.Warnings[0].Pos.Line != 12 || !strings.Contains(c.Warnings[1].Msg, "smtp_server") ||
		!strings.Contains(c.Warnings[2].Msg, "auth_pass: only the first 8 characters") {
		t.Errorf("warnings = %v, want notification_email (line 12), smtp_server and auth_pass", c.Warnings)
	}

	s := c.Script("chk_nginx")
	if s == nil || s.Command.Line != "/usr/bin/pgrep -x nginx" || s.Interval != 2*time.Second ||
		s.Timeout != time.Second || s.Weight != -30 || s.Rise != 2 || s.Fall != 3 {
		t.Errorf("vrrp_script = %+v", s)
	}

	web := c.Instance("VI_web")
	if web == nil {
		t.Fatal("VI_web missing")
	}
	want := struct {
		Iface    string
		VRID     uint8
		Prio     uint8
		Interval time.Duration
		Version  uint8
		Family   Family
		Preempt  bool
		Accept   bool
		Peers    int
		VIPs     []string
		Excluded []string
		Group    string
	}{"eth0", 51, 150, 50 * time.Millisecond, 3, IPv4, false, true, 2,
		[]string{"192.0.2.1/24 dev eth0 label eth0:vip", "192.0.2.2/32"}, nil, "G"}
	got := want
	got.Iface, got.VRID, got.Prio, got.Interval, got.Version, got.Family = web.Interface, web.VRID, web.Priority, web.Interval, web.Version, web.Family
	got.Preempt, got.Accept, got.Peers, got.Group = web.Preempt, web.Accept, len(web.UnicastPeers), web.SyncGroup
	got.VIPs, got.Excluded = nil, nil
	for _, v := range web.VIPs {
		got.VIPs = append(got.VIPs, v.String())
	}
	for _, v := range web.ExcludedVIPs {
		got.Excluded = append(got.Excluded, v.String())
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("VI_web (-want +got):\n%s", diff)
	}
	if len(web.TrackInterfaces) != 2 || web.TrackInterfaces[0].Weight != -20 || web.TrackInterfaces[1].Weight != 0 {
		t.Errorf("track_interface = %+v", web.TrackInterfaces)
	}
	if len(web.TrackProcesses) != 1 || *web.TrackProcesses[0].Weight != -10 || !web.TrackProcesses[0].Reverse {
		t.Errorf("track_process = %+v", web.TrackProcesses)
	}
	if web.Notify.Master.Line != "/etc/xvrrp/notify.sh MASTER" || web.Notify.Master.User != "root" || web.Notify.Any == nil {
		t.Errorf("notify = %+v", web.Notify)
	}

	v2 := c.Instance("VI_v2")
	if v2.Version != 2 || v2.AuthType != 1 || v2.AuthPass != "s3cretpa" || v2.Interval != time.Second || v2.Priority != 100 {
		t.Errorf("VI_v2 = version %d auth %d %q interval %v priority %d", v2.Version, v2.AuthType, v2.AuthPass, v2.Interval, v2.Priority)
	}
}

// TestTimers; what trackers do to priorities is package health's Policy,
// tested there.
func TestTimers(t *testing.T) {
	c := mustParse(t, `
vrrp_script a {
  script /bin/true
  weight 20
}
vrrp_script b {
  script /bin/true
  weight -30
}
vrrp_instance I {
  interface eth0
  virtual_router_id 1
  priority 240
  track_script {
    a
    b
  }
  track_interface {
    eth1 weight -250
  }
  virtual_ipaddress {
    192.0.2.1
  }
}
vrrp_instance O {
  interface eth0
  virtual_router_id 2
  priority 255
  version 3
  advert_int 0.1
  track_script {
    b
  }
  virtual_ipaddress {
    192.0.2.2
  }
}`)
	i, o := c.Instance("I"), c.Instance("O")
	// RFC 3768: Skew_Time = (256 - Priority) / 256 s; RFC 5798: × interval.
	if got, want := i.MasterDown(240), 3*time.Second+62500*time.Microsecond; got != want {
		t.Errorf("v2 Master_Down(240) = %v, want %v", got, want)
	}
	if got, want := o.MasterDown(255), 300*time.Millisecond+390625*time.Nanosecond; got != want {
		t.Errorf("v3 Master_Down(255) at 100ms = %v, want %v", got, want)
	}
}

func TestLexer(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       [][]string
	}{
		{"comments", "a b # c\n! whole line\nd \"e # f\" ! g\n", [][]string{{"a", "b"}, {"d", "e # f"}}},
		{"escaped comment characters", `a b\#c \!d`, [][]string{{"a", "b#c", "!d"}}},
		{"braces split lines", "x y { z } w\n}", [][]string{{"x", "y"}, {"{"}, {"z"}, {"}"}, {"w"}, {"}"}}},
		{"brace in quotes", `script "echo {}"`, [][]string{{"script", "echo {}"}}},
		{"quote ends a word", `a"b c"d`, [][]string{{"a", "b c", "d"}}},
		{"tabs and CRLF", "a\tb\r\nc\r\n", [][]string{{"a", "b"}, {"c"}}},
		{"definitions", "$IF=eth0\n$VIP = 192.0.2.1\ninterface $IF\nvip ${VIP}/24", [][]string{{"interface", "eth0"}, {"vip", "192.0.2.1/24"}}},
		{"multi-line definition", "$ADDRS=192.0.2.1 \\\n192.0.2.2\n$ADDRS", [][]string{{"192.0.2.1"}, {"192.0.2.2"}}},
		{"unknown definition is kept", "a $NOPE", [][]string{{"a", "$NOPE"}}},
		{"bare name only before space, comma, paren", "$V=x\na $V/24 ${V}/24 $V,y ($V)", [][]string{{"a", "$V/24", "x/24", "x,y", "(x)"}}},
		{"config id", "@xvrrp a\n@other b\n@^other c\n@^xvrrp d\n@xvrrp\te", [][]string{{"a"}, {"c"}, {"e"}}},
		{"predefined instance", "id ${_INSTANCE}", [][]string{{"id", "xvrrp"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &diags{fileOrder: map[string]int{}}
			lx := &lexer{fsys: fstest.MapFS{"k.conf": {Data: []byte(tc.text)}}, configID: "xvrrp",
				defs: map[string]string{"_INSTANCE": "xvrrp"}, diags: d}
			lx.readFile("k.conf", Pos{})
			var got [][]string
			for _, l := range lx.lines {
				got = append(got, l.words)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("lines (-want +got):\n%s", diff)
			}
			if len(d.errs) > 0 {
				t.Errorf("errors: %v", d.errs)
			}
		})
	}
}

// diagnose returns the errors of a configuration as "line: message" strings.
func diagnose(t *testing.T, text string) []string {
	t.Helper()
	_, err := Parse("k.conf", text)
	var ce *Error
	if err != nil && !errors.As(err, &ce) {
		t.Fatalf("error of type %T: %v", err, err)
	}
	var out []string
	if ce != nil {
		for _, d := range ce.Diags {
			out = append(out, d.String())
		}
	}
	return out
}

func instance(body string) string {
	return "vrrp_instance VI_1 {\n" + body + "\n}\n"
}

const base = "interface eth0\nvirtual_router_id 51\nvirtual_ipaddress {\n192.0.2.1\n}"

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string // "k.conf:LINE: substring", in order
	}{
		{"VRID out of range", instance("interface eth0\nvirtual_router_id 256\nvirtual_ipaddress {\n192.0.2.1\n}"),
			[]string{"k.conf:3: virtual_router_id: '256' is not a whole number from 1 to 255"}},
		{"VRID missing", instance("interface eth0\nvirtual_ipaddress {\n192.0.2.1\n}"),
			[]string{"k.conf:1: vrrp_instance VI_1 has no virtual_router_id"}},
		{"priority 0", instance(base + "\npriority 0"), []string{"k.conf:7: priority: '0' is not a whole number from 1 to 255"}},
		{"v2 sub-second", instance(base + "\nadvert_int 0.5"), []string{"k.conf:7: vrrp_instance VI_1: advert_int 0.5: VRRP version 2 counts whole seconds"}},
		{"v3 not in 10 ms steps", instance(base + "\nversion 3\nadvert_int 0.015"), []string{"k.conf:8: vrrp_instance VI_1: advert_int 0.015: VRRP version 3 counts 10 ms steps"}},
		{"v3 above 40.95 s", instance(base + "\nversion 3\nadvert_int 41"), []string{"k.conf:8: vrrp_instance VI_1: advert_int 41: VRRP version 3"}},
		{"advert_int not a number", instance(base + "\nadvert_int fast"), []string{"k.conf:7: advert_int: 'fast' is not a number of seconds"}},
		{"mixed families", instance(base + "\nvirtual_ipaddress {\n2001:db8::1\n}"), []string{"k.conf:8: vrrp_instance VI_1: 2001:db8::1 is not IPv4"}},
		{"auth with v3", instance(base + "\nversion 3\nauthentication {\nauth_type PASS\nauth_pass x\n}"), []string{"k.conf:8: vrrp_instance VI_1: VRRP version 3 has no authentication"}},
		{"PASS without a password", instance(base + "\nauthentication {\nauth_type PASS\n}"), []string{"k.conf:7: vrrp_instance VI_1: auth_type PASS needs auth_pass"}},
		{"AH", instance(base + "\nauthentication {\nauth_type AH\nauth_pass x\n}"), []string{"k.conf:8: auth_type AH"}},
		{"duplicate VRID", instance(base) + "vrrp_instance VI_2 {\n" + base + "\n}\n",
			[]string{"k.conf:8: vrrp_instance VI_2: VRID 51 on eth0 (IPv4) is already used by vrrp_instance VI_1 at k.conf:1",
				"k.conf:12: vrrp_instance VI_2: 192.0.2.1 is also a VIP of vrrp_instance VI_1"}},
		{"same VRID, other family", instance(base) + "vrrp_instance VI_2 {\ninterface eth0\nvirtual_router_id 51\nvirtual_ipaddress {\n2001:db8::1\n}\n}\n", nil},
		{"same VRID, disjoint unicast peers", instance(base+"\nunicast_peer {\n192.0.2.12\n}") +
			"vrrp_instance VI_2 {\ninterface eth0\nvirtual_router_id 51\nunicast_peer {\n192.0.2.13\n}\nvirtual_ipaddress {\n192.0.2.2\n}\n}\n",
			// keepalived runs both; xvrrp's kernel would let one shadow the other.
			[]string{"k.conf:11: vrrp_instance VI_2: VRID 51 on eth0 (IPv4) is already used by vrrp_instance VI_1 at k.conf:1 (keepalived allows it with other unicast peers"}},
		{"unknown keyword", instance(base + "\npriorty 100"), []string{"k.conf:7: unknown keyword 'priorty' in vrrp_instance VI_1 (did you mean 'priority'?)"}},
		{"not implemented", instance(base+"\nuse_ipvlan") + "net_namespace blue\n", []string{"k.conf:7: use_ipvlan: not implemented", "k.conf:9: net_namespace: not implemented"}},
		{"two VIPs on a line", instance("interface eth0\nvirtual_router_id 51\nvirtual_ipaddress {\n192.0.2.1 192.0.2.2\n}"),
			[]string{"k.conf:5: 192.0.2.1: '192.0.2.2' is not an address option", "write one address per line"}},
		{"bad VIP", instance("interface eth0\nvirtual_router_id 51\nvirtual_ipaddress {\n192.0.2.300\n}"), []string{"k.conf:5: '192.0.2.300' is not an IP address"}},
		{"unknown script", instance(base + "\ntrack_script {\nnope weight 10\n}"), []string{"k.conf:8: vrrp_instance VI_1: track_script nope: no vrrp_script of that name"}},
		{"weight out of range", "vrrp_script s {\nscript /bin/true\nweight 254\n}\n" + instance(base), []string{"k.conf:3: weight: '254' is not a whole number from -253 to 253"}},
		{"sync group member missing", instance(base) + "vrrp_sync_group G {\ngroup {\nVI_1\nVI_9\n}\n}\n", []string{"k.conf:8: vrrp_sync_group G: no vrrp_instance VI_9"}},
		{"instance in two groups", instance(base) + "vrrp_instance VI_2 {\ninterface eth0\nvirtual_router_id 52\nvirtual_ipaddress {\n192.0.2.2\n}\n}\n" +
			"vrrp_sync_group A {\ngroup {\nVI_1\nVI_2\n}\n}\nvrrp_sync_group B {\ngroup {\nVI_1\nVI_2\n}\n}\n",
			[]string{"k.conf:21: vrrp_sync_group B: vrrp_instance VI_1 is already in vrrp_sync_group A", "k.conf:21: vrrp_sync_group B: vrrp_instance VI_2 is already"}},
		{"unclosed block", "vrrp_instance VI_1 {\n" + base + "\n", []string{"k.conf:1: block of 'vrrp_instance' is not closed"}},
		{"stray brace", instance(base) + "}\n", []string{"k.conf:8: '}' closes no block"}},
		{"unterminated quote", instance(base + "\nnotify_master \"/bin/x"), []string{"k.conf:7: unterminated quote"}},
		{"duplicate instance", instance(base) + "vrrp_instance VI_1 {\ninterface eth1\nvirtual_router_id 52\nvirtual_ipaddress {\n192.0.2.9\n}\n}\n",
			[]string{"k.conf:8: vrrp_instance VI_1 is already defined at k.conf:1"}},
		{"strict mode", "global_defs {\nvrrp_strict\n}\n" + instance(base+"\nunicast_peer {\n192.0.2.12\n}\nauthentication {\nauth_type PASS\nauth_pass x\n}"),
			[]string{"k.conf:10: vrrp_instance VI_1: unicast peers are not allowed with strict mode", "k.conf:13: vrrp_instance VI_1: authentication is not allowed with strict mode"}},
		{"peer of another family", instance(base + "\nunicast_peer {\n2001:db8::12\n}"), []string{"k.conf:7: vrrp_instance VI_1: unicast_peer 2001:db8::12 is not IPv4"}},
		{"state", instance(base + "\nstate LEADER"), []string{"k.conf:7: state: 'LEADER' is not MASTER or BACKUP"}},
		{"arguments", instance(base + "\npriority"), []string{"k.conf:7: priority takes 1 argument(s), got 0"}},
		{"block where none goes", instance(base + "\npriority 100 {\n}"), []string{"k.conf:7: priority takes no block"}},
		{"missing block", instance(base + "\ntrack_interface eth1"), []string{"k.conf:7: track_interface needs a block"}},
		{"script without script", "vrrp_script s {\ninterval 1\n}\n", []string{"k.conf:1: vrrp_script s has no script"}},
		{"~SEQ", "~SEQ(i, 1, 3) x\n", []string{"k.conf:1: ~SEQ blocks are not supported"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := diagnose(t, tc.text)
			if len(tc.want) == 0 {
				if len(got) != 0 {
					t.Fatalf("errors %q, want none", got)
				}
				return
			}
			joined := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("errors:\n%s\nwant one containing %q", joined, w)
				}
			}
		})
	}
}

// TestAllErrorsAtOnce: a file with many problems reports every one, each with its
// line, not just the first.
func TestAllErrorsAtOnce(t *testing.T) {
	got := diagnose(t, `vrrp_instance A {
    interface eth0
    virtual_router_id 0
    priority 300
    advert_int 0.5
    bogus_keyword
    virtual_ipaddress {
        192.0.2.1/33
    }
}
vrrp_instance B {
    virtual_router_id 7
    virtual_ipaddress {
        192.0.2.7
    }
}
`)
	want := []string{
		"k.conf:3: virtual_router_id:",
		"k.conf:4: priority:",
		"k.conf:6: unknown keyword 'bogus_keyword'",
		"k.conf:8: '192.0.2.1/33' is not an IP address",
		"k.conf:11: vrrp_instance B has no interface",
	}
	if len(got) < len(want) {
		t.Fatalf("got %d errors, want at least %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || strings.HasPrefix(g, w)
		}
		if !found {
			t.Errorf("no error starting %q in:\n%s", w, strings.Join(got, "\n"))
		}
	}
}

func TestWarnings(t *testing.T) {
	c, err := Parse("k.conf", "global_defs {\nlvs_flush\nenable_snmp_vrrp\n}\n"+instance(base+"\nstate MASTER\nnopreempt\npreempt_delay 10\nsmtp_alert\nversion 2\nvirtual_ipaddress {\n192.0.2.1 label eth0:1\n}"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range c.Warnings {
		got = append(got, w.String())
	}
	want := []string{
		"k.conf:2: lvs_flush is for keepalived's LVS, not VRRP: ignored",
		"k.conf:3: enable_snmp_vrrp is for keepalived's SNMP, not VRRP: ignored",
		"k.conf:12: vrrp_instance VI_1: nopreempt is ignored with state MASTER",
		"k.conf:13: vrrp_instance VI_1: preempt_delay is ignored with state MASTER",
		"k.conf:14: smtp_alert is for keepalived's SMTP alerts, not VRRP: ignored",
		"k.conf:17: vrrp_instance VI_1: 192.0.2.1 is already listed at k.conf:9; this line is ignored",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings (-want +got):\n%s", diff)
	}
	in := c.Instances[0]
	if !in.Preempt || in.PreemptDelay != 0 {
		t.Errorf("preempt %v delay %v: MASTER ignores both", in.Preempt, in.PreemptDelay)
	}
	v6 := mustParse(t, instance("interface eth0\nvirtual_router_id 5\nversion 2\nvirtual_ipaddress {\n2001:db8::5\n}"))
	if v6.Instances[0].Version != 3 || len(v6.Warnings) != 1 || !strings.Contains(v6.Warnings[0].Msg, "IPv6 instances always use VRRP version 3") {
		t.Errorf("IPv6 with version 2: version %d, warnings %v", v6.Instances[0].Version, v6.Warnings)
	}
}

// TestResolved: what the runtime needs is resolved here, once: the multicast
// group and the sync group as a pointer.
func TestResolved(t *testing.T) {
	c := mustParse(t, `global_defs {
  vrrp_mcast_group6 ff02::13
}
vrrp_instance A {
  interface eth0
  virtual_router_id 1
  virtual_ipaddress {
    192.0.2.1
  }
}
vrrp_instance B {
  interface eth0
  virtual_router_id 2
  virtual_ipaddress {
    2001:db8::2
  }
}
vrrp_instance C {
  interface eth0
  virtual_router_id 3
  mcast_dst_ip 224.0.0.20
  virtual_ipaddress {
    192.0.2.3
  }
}
vrrp_sync_group G {
  group {
    A
    B
  }
}`)
	a, b, cc, g := c.Instance("A"), c.Instance("B"), c.Instance("C"), c.SyncGroups[0]
	for _, tc := range []struct {
		in   *Instance
		want string
	}{{a, "224.0.0.18"}, {b, "ff02::13"}, {cc, "224.0.0.20"}} {
		if got := tc.in.McastDstIP.String(); got != tc.want {
			t.Errorf("%s: multicast group %s, want %s", tc.in.Name, got, tc.want)
		}
	}
	if a.Group != g || b.Group != g || cc.Group != nil {
		t.Errorf("groups: A %p, B %p, C %p; want %p, %p, nil", a.Group, b.Group, cc.Group, g, g)
	}
}

func TestIncludes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("keepalived.conf", "include conf.d/*.conf\ninclude extra/{a,b}.inc\ninclude missing/*.conf\n")
	write("conf.d/10-global.conf", "global_defs {\n  router_id lb\n}\n")
	write("conf.d/20-vi.conf", "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 1\n  include ../vips.inc\n}\n")
	write("vips.inc", "virtual_ipaddress {\n  192.0.2.1\n}\n")
	write("extra/a.inc", "vrrp_script a {\n  script /bin/true\n}\n")
	write("extra/b.inc", "vrrp_script b {\n  script /bin/false\n  bogus 1\n}\n")
	c, err := Load(filepath.Join(dir, "keepalived.conf"), Options{})
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Diags) != 1 {
		t.Fatalf("err = %v, want exactly the error in extra/b.inc", err)
	}
	if d := ce.Diags[0]; d.Pos.File != filepath.Join(dir, "extra/b.inc") || d.Pos.Line != 3 {
		t.Errorf("error at %v, want extra/b.inc:3", d.Pos)
	}
	if c.Global.RouterID != "lb" || len(c.Instances) != 1 || len(c.Instances[0].VIPs) != 1 || len(c.Scripts) != 2 {
		t.Errorf("included content missing: router %q, %d instances, %d scripts", c.Global.RouterID, len(c.Instances), len(c.Scripts))
	}
	if len(c.Warnings) != 2 || !strings.Contains(c.Warnings[0].Msg, "no files match") ||
		!strings.Contains(c.Warnings[1].Msg, "without enable_script_security") {
		t.Errorf("warnings = %v, want the unmatched include, then scripts without script security", c.Warnings)
	}

	// The same file twice, not nested, is no loop.
	write("twice.conf", "include vips.inc\ninclude vips.inc\n")
	if _, err := Load(filepath.Join(dir, "twice.conf"), Options{}); err == nil || strings.Contains(err.Error(), "loop") {
		t.Errorf("a file included twice side by side: err = %v, want only the errors of a config without instances", err)
	}
}

func TestExpandBraces(t *testing.T) {
	got, ok := expandBraces("/etc/{a,b{1,2}}/*.conf", 3)
	want := []string{"/etc/a/*.conf", "/etc/b1/*.conf", "/etc/b2/*.conf"}
	if diff := cmp.Diff(want, got); diff != "" || !ok {
		t.Errorf("ok %v, (-want +got):\n%s", ok, diff)
	}
	if _, ok := expandBraces("/etc/{a,b{1,2}}/*.conf", 2); ok {
		t.Error("three patterns fit in two")
	}
}

func TestXvrrpCheck(t *testing.T) {
	cfg, err := Parse("t.conf", `xvrrp_check web {
    http_get http://127.0.0.1:8080/healthz
    status 204
    interval 0.5
    fall 2
    rise 3
    weight -60
}
xvrrp_check db {
    tcp_connect [::1]:5432
}
vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 1
    priority 100
    virtual_ipaddress {
        192.0.2.1/24
    }
    track_script {
        web
        db weight 10
    }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	web, db := cfg.Script("web"), cfg.Script("db")
	if web == nil || db == nil {
		t.Fatal("checks missing")
	}
	if *web.Check != (Check{Kind: CheckHTTP, Target: "http://127.0.0.1:8080/healthz", Status: 204}) ||
		web.Interval != 500*time.Millisecond || web.Fall != 2 || web.Rise != 3 || web.Weight != -60 {
		t.Errorf("web: %+v %+v", web, web.Check)
	}
	if *db.Check != (Check{Kind: CheckTCP, Target: "[::1]:5432", Status: 200}) {
		t.Errorf("db: %+v", db.Check)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v (built-in checks run no program)", cfg.Warnings)
	}
	for _, bad := range []struct{ body, want string }{
		{"tcp_connect localhost", "t.conf:2: tcp_connect: 'localhost' is not ADDRESS:PORT"},
		{"http_get ftp://x/", "t.conf:2: http_get: 'ftp://x/' is not an http:// or https:// URL"},
		{"interval 1", "t.conf:1: xvrrp_check c has no test"},
		{"http_get http://127.0.0.1/\n    status 42", "t.conf:3: status"},
	} {
		_, err := Parse("t.conf", "xvrrp_check c {\n    "+bad.body+"\n}\n")
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want %q", bad.body, err, bad.want)
		}
	}
}

func TestFastLiveness(t *testing.T) {
	inst := func(block string) string {
		return "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 1\n    virtual_ipaddress {\n        192.0.2.1/24\n    }\n" + block + "}\n"
	}
	for _, tc := range []struct {
		block    string
		interval time.Duration
		mult     int
	}{
		{"    fast_liveness {\n        interval 1ms\n        multiplier 3\n    }\n", time.Millisecond, 3},
		{"    fast_liveness {\n        interval 500us\n    }\n", 500 * time.Microsecond, LivenessMultiplier},
		{"    fast_liveness {\n        interval 0.002\n        multiplier 5\n    }\n", 2 * time.Millisecond, 5},
		{"    fast_liveness {\n    }\n", LivenessInterval, LivenessMultiplier},
	} {
		cfg, err := Parse("t.conf", inst(tc.block))
		if err != nil {
			t.Errorf("%q: %v", tc.block, err)
			continue
		}
		l := cfg.Instances[0].Liveness
		if l == nil || l.Interval != tc.interval || l.Multiplier != tc.mult || l.Pos.Line != 7 {
			t.Errorf("%q: %+v, want %v × %d at line 7", tc.block, l, tc.interval, tc.mult)
		}
	}
	cfg, err := Parse("t.conf", inst(""))
	if err != nil || cfg.Instances[0].Liveness != nil {
		t.Errorf("without the block: %+v, %v; want off", cfg, err)
	}
	for _, bad := range []struct{ block, want string }{
		{"    fast_liveness {\n        interval 10us\n    }\n", "t.conf:8: interval: '10us' is not a duration from 100µs to 10s"},
		{"    fast_liveness {\n        interval fast\n    }\n", "t.conf:8: interval: 'fast' is not a duration"},
		{"    fast_liveness {\n        interval -1ms\n    }\n", "t.conf:8: interval: '-1ms' is not a duration"},
		{"    fast_liveness {\n        multiplier 0\n    }\n", "t.conf:8: multiplier: '0' is not a whole number from 1 to 255"},
		{"    fast_liveness {\n        jitter 1\n    }\n", "t.conf:8: unknown keyword 'jitter' in fast_liveness"},
		{"    fast_liveness 1ms\n", "t.conf:7: fast_liveness needs a block"},
	} {
		_, err := Parse("t.conf", inst(bad.block))
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want %q", bad.block, err, bad.want)
		}
	}
	_, err = Parse("t.conf", "vrrp_instance VI_6 {\n    interface eth0\n    virtual_router_id 1\n    fast_liveness {\n    }\n    virtual_ipaddress {\n        2001:db8::1/64\n    }\n}\n")
	if want := "t.conf:4: vrrp_instance VI_6: fast_liveness probes are IPv4 only"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("IPv6: error %v, want %q", err, want)
	}
}
