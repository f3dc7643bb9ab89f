package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"xvrrp"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeConf(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckValid(t *testing.T) {
	p := writeConf(t, `global_defs {
  smtp_server 192.0.2.250
}
vrrp_script chk {
  script "/bin/true"
  weight -20
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 150
  advert_int 1
  track_script {
    chk
  }
  virtual_ipaddress {
    192.0.2.1/24 dev eth0
  }
}
`)
	code, out, errOut := runCLI(t, "check", "-f", p)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, errOut)
	}
	for _, want := range []string{
		"vrrp_instance VI_1 (" + p + ":8)",
		"eth0 VRID 51 IPv4 VRRPv2, advert every 1s, Master_Down 3.4140625s",
		"priority 150 (effective 130 to 150 with trackers)",
		"VIP 192.0.2.1/24 dev eth0",
		"track_script chk weight -20",
		p + ": valid, 1 instance(s), 2 warning(s)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errOut, "warning: "+p+":2: smtp_server is for keepalived's SMTP alerts") {
		t.Errorf("stderr lacks the smtp_server warning:\n%s", errOut)
	}
}

// TestCheckShowsRunWarnings: check prints the warnings run logs, among them
// that notify_deleted never fires (a reload runs notify_stop for what it removes).
func TestCheckShowsRunWarnings(t *testing.T) {
	p := writeConf(t, `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  virtual_ipaddress {
    192.0.2.1/24
  }
  notify_deleted /bin/true
}
vrrp_sync_group G {
  group {
    VI_1
  }
  notify_deleted
}
`)
	code, out, errOut := runCLI(t, "check", "-f", p)
	if code != 0 {
		t.Fatalf("exit %d, want 0\n%s", code, errOut)
	}
	for _, want := range []string{
		"warning: " + p + ":7: notify_deleted has no effect: an instance a reload removes runs its notify_stop",
		"warning: " + p + ":13: notify_deleted has no effect: an instance a reload removes runs its notify_stop",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if !strings.Contains(out, p+": valid, 1 instance(s), 3 warning(s)") {
		t.Errorf("stdout lacks the count of 3 warnings (two notify_deleted, a one-instance group):\n%s", out)
	}
}

// TestCheckBroken: every problem of a broken file is printed with file:line, and
// the exit status is 1.
func TestCheckBroken(t *testing.T) {
	p := writeConf(t, `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 300
  priority 100
  advert_int 0.5
  authentication {
    auth_type PASS
    auth_pass secret
  }
  virtual_ipaddress {
    192.0.2.1 192.0.2.2
  }
  track_script {
    missing
  }
  frobnicate yes
}
`)
	code, out, errOut := runCLI(t, "check", "-f", p)
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout = %q, want nothing for an invalid file", out)
	}
	for _, want := range []string{
		p + ":3: virtual_router_id: '300' is not a whole number from 1 to 255",
		p + ":5: vrrp_instance VI_1: advert_int 0.5: VRRP version 2 counts whole seconds",
		p + ":11: 192.0.2.1: '192.0.2.2' is not an address option",
		p + ":14: vrrp_instance VI_1: track_script missing: no vrrp_script of that name",
		p + ":16: unknown keyword 'frobnicate' in vrrp_instance VI_1",
		p + ": 5 error(s)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "USAGE:"},
		{[]string{"frobnicate"}, `xvrrp: no command "frobnicate"`},
		{[]string{"check", "--bogus"}, "xvrrp check: flag provided but not defined: -bogus"},
		{[]string{"check", "extra-arg"}, `xvrrp check: unexpected argument "extra-arg"`},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != 2 {
			t.Errorf("xvrrp %v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("xvrrp %v: stderr lacks %q:\n%s", tc.args, tc.want, errOut)
		}
		if !strings.Contains(errOut, "USAGE:") {
			t.Errorf("xvrrp %v: no usage printed", tc.args)
		}
	}
	code, out, _ := runCLI(t, "check", "--help")
	if code != 0 || !strings.Contains(out, "Exit status: 0 valid, 1 invalid, 2 bad command line") {
		t.Errorf("check --help: exit %d\n%s", code, out)
	}
}

func TestCheckMissingFile(t *testing.T) {
	code, _, errOut := runCLI(t, "check", "-f", "/nonexistent/keepalived.conf")
	if code != 1 || !strings.Contains(errOut, "/nonexistent/keepalived.conf: read /nonexistent/keepalived.conf") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}

// The process tuning keywords are honoured, and check says what run will do
// with them; without them, run's defaults.
func TestCheckProcessTuning(t *testing.T) {
	instance := `vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  virtual_ipaddress {
    192.0.2.1/24
  }
}
`
	for _, tc := range []struct{ global, want string }{
		{"", "process: SCHED_RR priority 10, real-time CPU bound 200ms, memory locked\n"},
		{"vrrp_priority -5\nmax_auto_priority 0", "process: normal scheduling at nice -5, memory locked\n"},
		{"vrrp_rt_priority 20\nvrrp_rlimit_rttime 50000\nvrrp_no_swap\nvrrp_cpu_affinity 0 1",
			"process: SCHED_RR priority 20, real-time CPU bound 50ms, memory locked, CPUs [0 1]\n"},
		{"vrrp_rt_priority 20\nvrrp_rlimit_rttime 50000\nvrrp_no_swap\nvrrp_cpu_affinity 0 1",
			"process: SCHED_RR priority 20, real-time CPU bound 50ms, memory locked, CPUs [0 1]\n"},
	} {
		p := writeConf(t, "global_defs {\n"+tc.global+"\n}\n"+instance)
		code, out, errOut := runCLI(t, "check", "-f", p)
		if code != 0 || !strings.Contains(out, tc.want) || strings.Contains(errOut, "process tuning") {
			t.Errorf("global %q: exit %d, want a line %q and no warning:\n%s%s", tc.global, code, tc.want, out, errOut)
		}
	}
}
