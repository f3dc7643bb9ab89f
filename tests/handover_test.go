package tests

import (
	"syscall"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
)

// Make before break: the master stopped with SIGTERM sends its priority 0 and
// keeps answering for the VIP until the backup, taking over after its
// Skew_Time, announces itself; then the old master's kernel lets go. The
// client's probes are answered by h1, then by h2, never by h1 again, never by
// both, and the switch loses at most the probe in flight. Before, h1 let go
// with its priority 0, and every probe in the backup's Skew_Time (61 ms at
// 100 ms adverts, a dozen probes) went unanswered.
func TestGracefulStopMakesBeforeBreak(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150, interval: "0.1"}, node{prio: 100, interval: "0.1"})
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")
	d := directedProbe(t, l)
	stopped := time.Now()
	if err := x1.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	<-x1.Done()
	answeredBy(t, p, "h2")
	time.Sleep(100 * time.Millisecond)
	p.Stop()
	d.Stop()
	if hasVIP(t, l.Hosts[0], vip4) {
		t.Error("h1 left its VIP behind after a clean stop")
	}
	checkSwitch(t, p.Answers(), stopped, "h1", "h2")
	checkNoneTwice(t, d.Rounds())
}

// A frozen master whose backup takes over before the master's lease ends (the
// backup counts a single missed advert: down_timer_adverts 1) is fenced by its
// own kernel on the backup's first advert: its daemon has not renewed the
// lease for more than an interval. Before, both answered for the VIP until the
// frozen master's lease ran out, about two intervals.
func TestStalledMasterLetsGoOnFirstAdvert(t *testing.T) {
	l, x1, x2 := pairH1First(t, node{prio: 150}, node{prio: 100, extra: "down_timer_adverts 1"})
	waitLog(t, x2, "(VI_1) Entering BACKUP STATE (init)")
	p := probeVIP(t, l, "h1")
	d := directedProbe(t, l)
	frozen := time.Now()
	if err := x1.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x1.Signal(syscall.SIGCONT) })
	waitLog(t, x2, "(VI_1) Entering MASTER STATE")
	answeredBy(t, p, "h2")
	time.Sleep(300 * time.Millisecond) // past h1's lease
	p.Stop()
	d.Stop()
	checkSwitch(t, p.Answers(), frozen, "h1", "h2")
	checkNoneTwice(t, d.Rounds())
}

// directedProbe probes the VIP at both hosts' MACs every 5 ms, to see whether
// both answer for it at once, whatever the client's ARP cache says.
func directedProbe(t *testing.T, l *lab.Lab) *lab.DirectedProber {
	t.Helper()
	d, err := l.Client.StartDirectedProber(vip4, l.Hosts, 5*time.Millisecond, 4000)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// checkSwitch wants the probes sent after since answered by from, then by to,
// never by from again, each by one host, with at most one probe unanswered at
// the switch: the one in flight when from let go.
func checkSwitch(t *testing.T, answers []lab.Answer, since time.Time, from, to string) {
	t.Helper()
	lost, switched := 0, false
	for _, a := range answers {
		if a.Sent.Before(since) {
			continue
		}
		if a.Also != "" {
			t.Errorf("probe at %v answered by both %s and %s", a.Sent.Format(time.StampMicro), a.From, a.Also)
		}
		switch a.From {
		case to:
			switched = true
		case from:
			if switched {
				t.Errorf("probe at %v answered by %s after %s took over", a.Sent.Format(time.StampMicro), from, to)
			}
		case "":
			if !switched {
				lost++
			}
		}
	}
	if !switched {
		t.Fatalf("%s never answered", to)
	}
	if lost > 1 {
		t.Errorf("%d probes unanswered between %s and %s; want the one in flight at most", lost, from, to)
	}
}

// checkNoneTwice wants no round of directed probes answered by two hosts, but
// for one: the new master adds its VIP just before its first advert leaves,
// and the old one lets go when that advert reaches it.
func checkNoneTwice(t *testing.T, rounds []lab.DirectedRound) {
	t.Helper()
	both := 0
	for _, r := range rounds {
		if len(r.From) > 1 {
			both++
			t.Logf("round at %v answered by %v", r.Sent.Format(time.StampMicro), r.From)
		}
	}
	if both > 1 {
		t.Errorf("%d rounds of directed probes answered by both hosts; want one at most", both)
	}
}
