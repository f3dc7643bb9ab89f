package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"github.com/xvrrp/xvrrp/tests/lab"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

var demoCommand = &cli.Command{
	Name:      "demo",
	Usage:     "build a namespace lab, show an election, a failover and a failback, tear it down",
	ArgsUsage: " ",
	Description: `Builds two VRRP nodes and a client in network namespaces joined by a
bridge (192.0.2.0/24; nothing touches the host's own interfaces), elects a
master, cuts its link, measures the outage the client sees, restores the link,
shows preemption, and removes the lab. Needs root.

Until xvrrp's own agent lands, the nodes run keepalived with the demo's
keepalived.conf; xvrrp checks that configuration and decodes every advert on
the wire.`,
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
		return runDemo(c.Context, c.App.Writer, iv)
	},
}

const demoVIP = "192.0.2.1"

func demoConfig(prio int, iv time.Duration) string {
	return fmt.Sprintf(`global_defs {
    router_id demo-%d
    vrrp_garp_master_refresh 1
}
vrrp_instance VI_1 {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority %d
    version 3
    advert_int %g
    virtual_ipaddress {
        %s/24
    }
}
`, prio, prio, iv.Seconds(), demoVIP)
}

type demo struct {
	w     io.Writer
	start time.Time
	mu    sync.Mutex
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.w, "[%7.3fs] %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func runDemo(ctx context.Context, w io.Writer, iv time.Duration) (err error) {
	if os.Geteuid() != 0 {
		return &exitError{code: exitFailure, err: fmt.Errorf("demo: needs root to build network namespaces")}
	}
	if _, err := exec.LookPath("keepalived"); err != nil {
		return &exitError{code: exitFailure, err: fmt.Errorf("demo: keepalived is not installed (make demo installs it)")}
	}
	d := &demo{w: w, start: time.Now()}
	vip := netip.MustParseAddr(demoVIP)
	prios := map[string]int{"h1": 150, "h2": 100}

	fmt.Fprintf(w, "xvrrp demo: two VRRP nodes behind VIP %s and a client, in network namespaces.\n", demoVIP)
	fmt.Fprintf(w, "  h1 192.0.2.11 priority %d, h2 192.0.2.12 priority %d, VRRPv3 every %v.\n", prios["h1"], prios["h2"], iv)
	fmt.Fprintf(w, "  The nodes run keepalived until xvrrp's agent lands; xvrrp checks their\n  configuration and decodes the adverts the client hears.\n\n")

	l, err := lab.New(ctx, lab.Options{Hosts: 2, Client: true})
	if err != nil {
		return err
	}
	defer func() {
		namespaces := l.Namespaces()
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
		left := 0
		for _, ns := range namespaces {
			if _, serr := os.Stat("/run/netns/" + ns); serr == nil {
				left++
			}
		}
		d.say("lab removed: %d namespaces deleted, %d left", len(namespaces)-left, left)
	}()
	d.say("lab up: %s", strings.Join(l.Namespaces(), " "))

	var agents []*lab.Keepalived
	instances := map[string]*config.Instance{}
	defer func() {
		if err != nil {
			for _, k := range agents {
				fmt.Fprintf(w, "\n--- keepalived on %s:\n%s", k.Host.Name, k.Output())
			}
		}
	}()
	for _, h := range l.Hosts {
		text := demoConfig(prios[h.Name], iv)
		cfg, err := config.Parse(h.Name+"/keepalived.conf", text)
		if err != nil {
			return fmt.Errorf("demo configuration of %s: %w", h.Name, err)
		}
		in := cfg.Instances[0]
		instances[h.Name] = in
		d.say("xvrrp check %s/keepalived.conf: valid; %s VRID %d %v VRRPv%d every %v, priority %d, Master_Down %v",
			h.Name, in.Interface, in.VRID, in.Family, in.Version, in.Interval, in.Priority, in.MasterDown(in.Priority).Round(time.Millisecond))
		k, err := h.StartKeepalived(text)
		if err != nil {
			return err
		}
		agents = append(agents, k)
		if err := h.StartResponder(); err != nil {
			return err
		}
	}

	// The wire, as the client hears it: print each change of who advertises what.
	type key struct {
		src  netip.Addr
		prio uint8
	}
	var last key
	var wireMu sync.Mutex
	err = l.Client.ListenVRRP(func(pkt []byte, at time.Time) {
		p, err := vrrp.DecodePacket(pkt)
		if err != nil {
			d.say("wire: dropped advert: %v", err)
			return
		}
		wireMu.Lock()
		defer wireMu.Unlock()
		if k := (key{p.Src, p.Priority}); k != last {
			last = k
			who := map[string]string{"192.0.2.11": "h1", "192.0.2.12": "h2"}[p.Src.String()]
			d.say("wire: advert from %s (%v): VRID %d priority %d interval %v VIPs %v", who, p.Src, p.VRID, p.Priority, p.Interval, p.Addrs)
		}
	})
	if err != nil {
		return err
	}
	prober, err := l.Client.StartProber(vip, 5*time.Millisecond, 20000)
	if err != nil {
		return err
	}

	waitServer := func(host string, timeout time.Duration) error {
		deadline := time.Now().Add(timeout)
		for prober.Last() != host {
			if time.Now().After(deadline) {
				return fmt.Errorf("demo: %s did not take over the VIP within %v", host, timeout)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
		return nil
	}

	d.say("election: waiting for a master")
	if err := waitServer("h1", 10*time.Second); err != nil {
		return err
	}
	d.say("client: VIP %s answered by h1 (MASTER)", demoVIP)
	time.Sleep(time.Second)

	h1 := l.Hosts[0]
	d.say("failure: cutting h1's link")
	cut := time.Now()
	if err := h1.Cut(); err != nil {
		return err
	}
	if err := waitServer("h2", 10*time.Second); err != nil {
		return err
	}
	outage, _ := prober.Outage(cut)
	h2 := instances["h2"]
	d.say("client: VIP answered by h2 — the client saw %v without answers (h2's Master_Down_Interval: %v)",
		outage.Round(time.Millisecond), h2.MasterDown(h2.Priority).Round(time.Millisecond))
	time.Sleep(time.Second)

	d.say("recovery: restoring h1's link; h1 has the higher priority and preempts")
	restore := time.Now()
	if err := h1.Restore(); err != nil {
		return err
	}
	if err := waitServer("h1", 10*time.Second); err != nil {
		return err
	}
	back, _ := prober.Outage(restore)
	d.say("client: VIP answered by h1 again — longest gap during failback %v", back.Round(time.Millisecond))
	time.Sleep(500 * time.Millisecond)
	prober.Stop()

	answered := 0
	as := prober.Answers()
	for _, a := range as {
		if a.From != "" {
			answered++
		}
	}
	fmt.Fprintf(w, "\nsummary: %d probes every 5ms, %d answered; failover outage %v, failback gap %v\n",
		len(as), answered, outage.Round(time.Millisecond), back.Round(time.Millisecond))
	return nil
}
