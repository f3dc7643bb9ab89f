package health

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

// The process count follows the kernel's events: a matching process exits and
// the tracker goes down at once, another starts and it comes back. In the
// kernel's initial network namespace (where `go test` runs) this is the proc
// connector; elsewhere the once-a-second /proc scan.
func TestTrackProcess(t *testing.T) {
	if os.Getuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root in CI")
		}
		t.Skip("the proc connector needs root")
	}
	p := &config.TrackProcess{Name: "s", Process: "sleep", Params: "29.4711", Quorum: 1}
	start := func() *exec.Cmd {
		cmd := exec.Command("sleep", "29.4711") // an argument no other process has
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200 && !procMatch(p, cmd.Process.Pid); i++ {
			time.Sleep(5 * time.Millisecond) // until its exec is complete
		}
		return cmd
	}
	cmd := start()
	w := newProcWatch([]*config.TrackProcess{p}, slog.New(slog.DiscardHandler))
	if !w.ok["s"] {
		t.Fatal("the running process was not counted")
	}
	out := make(chan Update, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go w.run(ctx, out)
	time.Sleep(500 * time.Millisecond) // subscribed and self-tested
	for _, want := range []bool{false, true} {
		killed := time.Now()
		if want {
			cmd = start()
		} else {
			cmd.Process.Kill()
			cmd.Wait()
		}
		select {
		case u := <-out:
			if u.OK != want {
				t.Fatalf("update %+v, want OK=%v", u, want)
			}
			t.Logf("OK=%v reported %v after the change", want, time.Since(killed))
		case <-ctx.Done():
			t.Fatalf("no update for OK=%v", want)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// fork_delay and terminate_delay: a change is reported only once it has lasted
// that long, and a bounce shorter than that is not reported at all.
func TestTrackProcessDelay(t *testing.T) {
	p := &config.TrackProcess{Name: "d", Process: "xvrrp-no-such", Quorum: 1,
		ForkDelay: 50 * time.Millisecond, TerminateDelay: 80 * time.Millisecond}
	w := newProcWatch([]*config.TrackProcess{p}, slog.New(slog.DiscardHandler))
	if w.ok["d"] {
		t.Fatal("counted a process that does not exist")
	}
	out := make(chan Update, 10)
	ctx := context.Background()
	noUpdate := func(when string) {
		t.Helper()
		if len(out) != 0 {
			t.Fatalf("%s: reported %+v", when, <-out)
		}
	}
	for _, up := range []bool{true, false} {
		set := func(present bool) {
			if present {
				w.pids["d"][1] = true
			} else {
				delete(w.pids["d"], 1)
			}
			w.report(ctx, out)
		}
		set(up) // a bounce: changes and changes back within the delay
		if w.wake() == nil {
			t.Fatalf("up=%v: no delayed report pending", up)
		}
		set(!up)
		if w.wake() != nil {
			t.Fatalf("up=%v: a report still pending after the bounce", up)
		}
		noUpdate("bounce")

		set(up) // a change that lasts
		noUpdate("before the delay")
		<-w.wake()
		w.report(ctx, out)
		select {
		case u := <-out:
			if u.OK != up {
				t.Fatalf("reported %+v, want OK=%v", u, up)
			}
		default:
			t.Fatalf("up=%v: not reported after the delay", up)
		}
	}
}
