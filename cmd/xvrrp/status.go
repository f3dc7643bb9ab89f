package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/xvrrp/xvrrp/loader"
	"github.com/xvrrp/xvrrp/vrrp/agent"
)

var statusCommand = &cli.Command{
	Name:      "status",
	Usage:     "show the instances of a running daemon, or what the kernel enforces when none runs",
	ArgsUsage: " ",
	Description: `Asks the daemon on the unix socket in its state directory: per instance, its
state, base and effective priority, the last advert the kernel accepted (from
whom, at what priority, how long ago), the lease left, each VIP and whether the
fence lets it through, trackers and counters. With no daemon answering, reads
the pinned maps instead and says what the kernel enforces now: states, leases
(expired or not) and which VIPs are fenced. --json prints the document
docs/status.md describes.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "state-dir", Value: defaultStateDir, Usage: "the daemon's state directory"},
		&cli.StringFlag{Name: "pin-dir", Value: loader.DefaultPinDir, Usage: "the daemon's pin directory, read when no daemon answers"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON"},
	},
	Action: func(c *cli.Context) error {
		if c.Args().Present() {
			return usageError(c, "unexpected argument %q", c.Args().First())
		}
		st, source, err := readStatus(c.String("state-dir"), c.String("pin-dir"))
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		if c.Bool("json") {
			e := json.NewEncoder(c.App.Writer)
			e.SetIndent("", "  ")
			return e.Encode(struct {
				Source string `json:"source"`
				agent.Status
			}{source, st})
		}
		printStatus(c.App.Writer, st, source)
		return nil
	},
}

// readStatus asks the daemon, or reads the pinned maps when none answers;
// source says which.
func readStatus(stateDir, pinDir string) (agent.Status, string, error) {
	var st agent.Status
	sock := filepath.Join(stateDir, "xvrrp.sock")
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err == nil {
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(3 * time.Second))
		if err := json.NewDecoder(conn).Decode(&st); err != nil {
			return st, "", fmt.Errorf("read status from %s: %w", sock, err)
		}
		return st, "daemon", nil
	}
	dp, lerr := loader.Load(loader.Options{PinDir: pinDir, Observe: true})
	if lerr != nil {
		return st, "", fmt.Errorf("no daemon answers on %s (%v), and %w", sock, errors.Unwrap(err), lerr)
	}
	defer dp.Close()
	st, err = agent.KernelStatus(dp)
	return st, "kernel", err
}

func printStatus(w io.Writer, st agent.Status, source string) {
	if source == "kernel" {
		fmt.Fprintln(w, "no daemon running: what the kernel enforces, from the pinned maps")
	} else {
		fmt.Fprintf(w, "xvrrp pid %d, %s, up %v\n", st.PID, st.Config, time.Since(st.Started).Round(time.Second))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "instance\tinterface\tVRID\tfamily\tstate\tpriority\tlast advert\tlease left\tVIPs")
	for _, in := range st.Instances {
		prio := fmt.Sprint(in.EffectivePriority)
		if in.BasePriority != 0 && in.BasePriority != in.EffectivePriority {
			prio = fmt.Sprintf("%d (base %d)", in.EffectivePriority, in.BasePriority)
		}
		last := "-"
		if m := in.Master; m != nil {
			last = fmt.Sprintf("%s prio %d, %v ago", m.Address, m.Priority, m.Age.Round(time.Millisecond))
		}
		lease := "-"
		if in.LeaseLeft > 0 {
			lease = in.LeaseLeft.Round(time.Millisecond).String()
		} else if in.State == "MASTER" {
			lease = "expired"
		}
		var vips []string
		for _, v := range in.VIPs {
			s := v.Address
			if v.Fenced {
				s += " (fenced)"
			}
			vips = append(vips, s)
		}
		state := in.State
		if in.Fault != "" {
			state += ": " + in.Fault
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", orDash(in.Name), in.Interface, in.VRID, in.Family, state, prio, last, lease, strings.Join(vips, " "))
	}
	tw.Flush()
	printCounters(w, st)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
