// Package health runs the trackers that move an instance's priority or put it
// in FAULT — vrrp_script programs, xvrrp_check built-in checks, track_file and
// track_process — each on its own goroutine, reporting every change of state
// on one channel; interfaces the agent tracks itself, from the netlink link
// updates it already reads.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

// Kind says which tracker an Update is from.
type Kind uint8

const (
	KindScript  Kind = iota + 1 // vrrp_script or xvrrp_check
	KindFile                    // track_file
	KindProcess                 // track_process
)

func (k Kind) String() string {
	switch k {
	case KindScript:
		return "script"
	case KindFile:
		return "track_file"
	case KindProcess:
		return "track_process"
	}
	return "tracker"
}

// Update is a tracker's new state.
type Update struct {
	Kind  Kind
	Name  string
	OK    bool // scripts, checks and processes
	Value int  // files: the number in the file
}

// probeLoop runs probe every interval and reports the state it settles in:
// failed after fall failures in a row, healthy after rise successes in a row,
// starting healthy unless initFail (keepalived's init_fail).
func probeLoop(ctx context.Context, s *config.Script, log *slog.Logger, probe func(context.Context) (bool, error), out chan<- Update) {
	ok := !s.InitFail
	good, bad := 0, 0
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		res, err := probe(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			log.Warn("health check failed", "script", s.Name, "error", err)
		}
		if res {
			good, bad = good+1, 0
			if !ok && good >= s.Rise {
				ok = true
				log.Info(fmt.Sprintf("VRRP_Script(%s) succeeded", s.Name))
				send(ctx, out, Update{Kind: KindScript, Name: s.Name, OK: true})
			}
		} else {
			good, bad = 0, bad+1
			if ok && bad >= s.Fall {
				ok = false
				log.Info(fmt.Sprintf("VRRP_Script(%s) failed", s.Name))
				send(ctx, out, Update{Kind: KindScript, Name: s.Name, OK: false})
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func send(ctx context.Context, out chan<- Update, u Update) {
	select {
	case out <- u:
	case <-ctx.Done():
	}
}

// timeout is a script's timeout: its own, else its interval.
func timeout(s *config.Script) time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return s.Interval
}
