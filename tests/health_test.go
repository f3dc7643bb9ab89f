package tests

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/tests/labtest"
	"github.com/xvrrp/xvrrp/vrrp"
)

// websvcName is what the test binary serves HTTP as when run under that name:
// the stand-in for nginx that the health tests kill and restart.
const websvcName = "websvc"

const websvcAddr = "127.0.0.1:8080"

func websvc(addr string) {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// startWebsvc runs the web service in the host as a process named websvc, with
// node=NAME among its arguments so that track_process can tell the hosts' apart
// (the kernel reports every process on the machine to every daemon).
func startWebsvc(t *testing.T, l *lab.Lab, h *lab.Host) *lab.Proc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(l.Dir, websvcName)
	if _, err := os.Lstat(link); err != nil {
		if err := os.Symlink(exe, link); err != nil {
			t.Fatal(err)
		}
	}
	p, err := h.Start(link, websvcAddr, "node="+h.Name)
	if err != nil {
		t.Fatal(err)
	}
	// Up when it answers.
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := h.Run(t.Context(), "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("websvc on %s does not answer: %v %s", h.Name, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// healthConfig is nodeConfig with a tracker block and track lines for node n.
func healthConfig(prio int, host, tracker, track string) string {
	cfg := nodeConfig(node{prio: prio, global: "    enable_script_security", extra: track})
	return strings.Replace(tracker, "NODE", host, -1) + cfg
}

// The seed scenario: a web service on both nodes behind the VIP. The master's
// service dies: its tracker fails after fall × interval, its priority drops by
// the weight below the backup's, and the backup takes over a Master_Down_Interval
// later. The service comes back: the old master's priority returns and it
// preempts. Once with a vrrp_script, once with track_process, once with the
// built-in HTTP check.
func TestHealthSeedScenario(t *testing.T) {
	const interval, fall = 200 * time.Millisecond, 2
	for _, tc := range []struct {
		name    string
		tracker string // NODE is the host's name
		track   string
	}{
		{"vrrp_script", `vrrp_script chk_web {
    script "SCRIPT"
    interval 0.2
    timeout 0.5
    fall 2
    rise 2
    weight -60
}
`, "    track_script {\n        chk_web\n    }"},
		{"track_process", `vrrp_track_process chk_web {
    process websvc node=NODE
    param_match partial
    weight -60
}
`, "    track_process {\n        chk_web\n    }"},
		{"xvrrp_check http_get", `xvrrp_check chk_web {
    http_get http://127.0.0.1:8080/
    status 200
    interval 0.2
    timeout 0.5
    fall 2
    rise 2
    weight -60
}
`, "    track_script {\n        chk_web\n    }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := labtest.New(t, lab.Options{Hosts: 2, Client: true})
			h1, h2 := l.Hosts[0], l.Hosts[1]
			script := filepath.Join(l.Dir, "chk_web.sh")
			// The keepalived way: a script that checks the service.
			if err := os.WriteFile(script, []byte("#!/bin/bash\nexec 3<>/dev/tcp/127.0.0.1/8080\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			os.Chmod(l.Dir, 0o755)
			tracker := strings.Replace(tc.tracker, "SCRIPT", script, 1)
			web := map[string]*lab.Proc{}
			for _, h := range l.Hosts {
				if err := h.StartResponder(); err != nil {
					t.Fatal(err)
				}
				web[h.Name] = startWebsvc(t, l, h)
			}
			x1, err := h1.StartXvrrp(xvrrpBin, healthConfig(150, "h1", tracker, tc.track))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x1, "(VI_1) Entering MASTER STATE")
			x2, err := h2.StartXvrrp(xvrrpBin, healthConfig(100, "h2", tracker, tc.track))
			if err != nil {
				t.Fatal(err)
			}
			waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("h1:\n%s\nh2:\n%s", x1.Output(), x2.Output())
				}
			})
			p := probeVIP(t, l, "h1")

			// The master's service dies.
			web["h1"].Signal(syscall.SIGKILL)
			<-web["h1"].Done()
			died := time.Now()
			waitLog(t, x1, "(VI_1) Changing effective priority from 150 to 90")
			waitLog(t, x2, "(VI_1) Entering MASTER STATE")
			answeredBy(t, p, "h2")
			tookOver := time.Now()
			mdi := vrrp.MasterDownInterval(3, 100, 50*time.Millisecond, 3)
			bound := fall*interval + mdi
			if tc.name == "track_process" {
				// In a lab namespace the kernel sends no process events (they go
				// to its initial namespace only), so the tracker scans /proc every
				// second; health's TestTrackProcess covers the event path.
				bound = time.Second + mdi
			}
			t.Logf("%s: the client was answered by h2 %v after the service died (fall × interval + Master_Down_Interval = %v)",
				tc.name, tookOver.Sub(died), bound)
			// One more probe interval for the check in flight when it died,
			// and scheduling slack: the bound is what an operator computes.
			if slack := interval + 150*time.Millisecond; tookOver.Sub(died) > bound+slack {
				t.Errorf("takeover took %v, more than %v + %v", tookOver.Sub(died), bound, slack)
			}
			if hasVIP(t, h1, vip4) {
				t.Error("h1 kept the VIP")
			}

			// The service returns: h1 preempts.
			web["h1"] = startWebsvc(t, l, h1)
			waitLog(t, x1, "(VI_1) Changing effective priority from 90 to 150")
			waitForCount(t, x1.Proc, "(VI_1) Entering MASTER STATE", 2)
			answeredBy(t, p, "h1")
			for _, a := range p.Answers() {
				if a.Also != "" {
					t.Errorf("probe at %v answered by both %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
				}
			}
		})
	}
}

// track_interface: a second link of h1, tracked with a weight, goes down; h1's
// priority drops below h2's and the VIP moves; it comes back and h1 preempts.
func TestTrackInterface(t *testing.T) {
	l := labtest.New(t, lab.Options{Hosts: 2, Client: true, SecondLink: true})
	h1, h2 := l.Hosts[0], l.Hosts[1]
	for _, h := range l.Hosts {
		if err := h.StartResponder(); err != nil {
			t.Fatal(err)
		}
	}
	track := "    track_interface {\n        eth1 weight -60\n    }"
	x1, err := h1.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 150, extra: track}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Entering MASTER STATE")
	x2, err := h2.StartXvrrp(xvrrpBin, nodeConfig(node{prio: 100, extra: track}))
	if err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")
	if err := h1.CutLink("eth1"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "tracked interface eth1 down")
	waitLog(t, x1, "(VI_1) Changing effective priority from 150 to 90")
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	answeredBy(t, p, "h2")
	if countIn(x1.Proc, "Entering FAULT STATE") != 0 {
		t.Error("a weighted tracked interface put h1 in FAULT")
	}
	if err := h1.RestoreLink("eth1"); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x1, "(VI_1) Changing effective priority from 90 to 150")
	waitForCount(t, x1.Proc, "(VI_1) Entering MASTER STATE", 2)
	answeredBy(t, p, "h1")
}
