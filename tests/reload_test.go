package tests

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
)

const vi2 = `vrrp_instance VI_2 {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority %d
    version 3
    advert_int 0.05
    virtual_ipaddress {
        192.0.2.2/24
    }
}
`

// reloadWith writes conf to the daemon's configuration file and sends SIGHUP,
// then waits for the n-th "configuration reloaded" (or refusal).
func reloadWith(t *testing.T, x *lab.Xvrrp, conf, wait string, n int) {
	t.Helper()
	if err := os.WriteFile(x.Config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := x.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForCount(t, x.Proc, wait, n)
}

// TestReload: SIGHUP reloads with keepalived's semantics and without a flap.
// A client probing the VIP every millisecond loses nothing across 20 reloads
// of an unchanged configuration on both nodes, nor across reloads that add and
// then remove another instance; the added instance elects a master and its
// VIP answers, the removed one resigns and its VIP goes. An invalid
// configuration is refused with file:line and the running one carries on. A
// priority changed in place moves mastership as VRRP says.
func TestReload(t *testing.T) {
	n1, n2 := node{prio: 150}, node{prio: 100}
	l, x1, x2 := pairH1First(t, n1, n2)
	h1 := l.Hosts[0]
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	probeVIP(t, l, "h1") // wait until answered
	p, err := l.Client.StartProber(vip4, time.Millisecond, 30000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	answeredBy(t, p, "h1")
	start := time.Now()
	transitions := func() int { return countIn(x1.Proc, "Entering") + countIn(x2.Proc, "Entering") }
	before := transitions()

	for i := 1; i <= 20; i++ {
		reloadWith(t, x1, nodeConfig(n1), "configuration reloaded", i)
		reloadWith(t, x2, nodeConfig(n2), "configuration reloaded", i)
	}
	if n := transitions() - before; n != 0 {
		t.Errorf("%d transitions across 20 reloads of an unchanged configuration", n)
	}

	// Another instance added, then removed.
	reloadWith(t, x1, nodeConfig(n1)+strings.ReplaceAll(vi2, "%d", "150"), "configuration reloaded", 21)
	reloadWith(t, x2, nodeConfig(n2)+strings.ReplaceAll(vi2, "%d", "100"), "configuration reloaded", 21)
	waitLog(t, x1, "(VI_2) Entering MASTER STATE")
	waitLog(t, x2, "(VI_2) Entering BACKUP STATE")
	time.Sleep(300 * time.Millisecond)
	if !hasVIP(t, h1, vip4.Next()) {
		t.Error("the added instance's VIP 192.0.2.2 is not on its master")
	}
	// The backup first: removed from the master first, the instance's
	// priority 0 would rightly make the backup take it over.
	reloadWith(t, x2, nodeConfig(n2), "configuration reloaded", 22)
	reloadWith(t, x1, nodeConfig(n1), "configuration reloaded", 22)
	waitLog(t, x1, "(VI_2) removed from the configuration: resigning")
	if hasVIP(t, h1, vip4.Next()) {
		t.Error("the removed instance's VIP 192.0.2.2 is still on h1")
	}
	if n := countIn(x2.Proc, "(VI_2) Entering MASTER STATE"); n != 0 {
		t.Errorf("h2 took VI_2 over when h1 removed it (both removed it):\n%s", x2.Output())
	}

	// An invalid configuration changes nothing.
	reloadWith(t, x1, nodeConfig(n1)+"vrrp_instance VI_9 {\n    priorty 1\n}\n", "configuration not reloaded", 1)
	if !strings.Contains(x1.Output(), "keepalived.conf:18: unknown keyword 'priorty'") {
		t.Errorf("the refused configuration's error is not logged with file:line:\n%s", lastLines(x1.Output(), 10))
	}
	time.Sleep(200 * time.Millisecond)
	p.Stop()
	lost := 0
	for _, a := range p.Answers() {
		if a.Sent.After(start) && a.From != "h1" {
			lost++
		}
		if a.Also != "" {
			t.Errorf("probe at %v answered by %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d probes not answered by h1 across the reloads", lost, len(p.Answers()))
	}

	// A priority lowered in place: h2 preempts.
	reloadWith(t, x1, nodeConfig(node{prio: 90}), "configuration reloaded", 23)
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	waitLog(t, x1, `(VI_1) Entering BACKUP STATE" from=MASTER`)
}
