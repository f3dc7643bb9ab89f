package main

import (
	"os"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/xvrrp/xvrrp/bench"
	"github.com/xvrrp/xvrrp/vrrp"
)

var demoCommand = &cli.Command{
	Name:      "demo",
	Usage:     "build a namespace lab, show an election, a failover and a failback, tear it down",
	ArgsUsage: " ",
	Description: `Builds two VRRP nodes and a client in network namespaces joined by a
bridge (192.0.2.0/24; nothing touches the host's own interfaces), elects a
master, cuts its link, measures the outage the client sees, restores the link,
shows preemption, and removes the lab. Needs root.

Each node runs "xvrrp run" on a keepalived.conf, with its own pin and state
directories; the demo prints their transitions and every change on the wire.`,
	Flags: []cli.Flag{
		&cli.DurationFlag{Name: "interval", Value: 100 * time.Millisecond, Usage: "VRRPv3 advert interval (10ms steps)"},
	},
	Action: func(c *cli.Context) error {
		if c.Args().Present() {
			return usageError(c, "unexpected argument %q", c.Args().First())
		}
		iv := c.Duration("interval")
		if iv < vrrp.MinIntervalV3 || iv > time.Second || iv%vrrp.IntervalUnitV3 != 0 {
			return usageError(c, "--interval %v: want 10ms to 1s in 10ms steps", iv)
		}
		self, err := os.Executable()
		if err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		if err := bench.Demo(c.Context, c.App.Writer, self, iv); err != nil {
			return &exitError{code: exitFailure, err: err}
		}
		return nil
	},
}
