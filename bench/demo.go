package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/xvrrp/xvrrp/bench/lab"
	"github.com/xvrrp/xvrrp/vrrp"
	"github.com/xvrrp/xvrrp/vrrp/config"
)

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

// Demo builds two VRRP nodes running `bin run` and a client in network
// namespaces, shows an election, a failover and a failback on w, and removes
// the lab, also when ctx ends.
func Demo(ctx context.Context, w io.Writer, bin string, iv time.Duration) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("demo: needs root to build network namespaces")
	}
	self := bin
	d := &demo{w: w, start: time.Now()}
	vip := netip.MustParseAddr(demoVIP)
	prios := map[string]int{"h1": 150, "h2": 100}

	fmt.Fprintf(w, "xvrrp demo: two VRRP nodes behind VIP %s and a client, in network namespaces.\n", demoVIP)
	fmt.Fprintf(w, "  h1 192.0.2.11 priority %d, h2 192.0.2.12 priority %d, VRRPv3 every %v.\n", prios["h1"], prios["h2"], iv)
	fmt.Fprintf(w, "  Each node runs `xvrrp run`; the client probes the VIP every 5ms.\n\n")

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

	var agents []*lab.Xvrrp
	instances := map[string]*config.Instance{}
	defer func() {
		if err != nil {
			for _, x := range agents {
				fmt.Fprintf(w, "\n--- xvrrp run on %s:\n%s", x.Host.Name, x.Output())
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
		// JSON logs: the demo reads the daemons' transitions as records.
		x, err := h.StartXvrrp(self, text, "--log-format", "json")
		if err != nil {
			return err
		}
		agents = append(agents, x)
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
	stopTail := tailTransitions(d, agents)
	defer stopTail()

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

	d.say("stop: SIGTERM to both daemons; the master resigns with priority 0 and removes its VIP")
	for _, x := range agents {
		x.Signal(syscall.SIGTERM)
	}
	for _, x := range agents {
		select {
		case <-x.Done():
		case <-time.After(5 * time.Second):
			return fmt.Errorf("demo: xvrrp on %s did not stop", x.Host.Name)
		}
	}
	time.Sleep(50 * time.Millisecond)
	stopTail()

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

// tailTransitions prints the daemons' transition log lines as they appear, until
// the returned function is called.
func tailTransitions(d *demo, agents []*lab.Xvrrp) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		seen := make([]int, len(agents))
		scan := func() {
			for i, x := range agents {
				out := x.Output()
				lines := strings.Split(out[seen[i]:], "\n")
				// Leave a partial last line for the next scan.
				consumed := len(out) - len(lines[len(lines)-1])
				for _, line := range lines[:len(lines)-1] {
					if msg, ok := logMessage(line); ok && (strings.Contains(msg, "Entering") || strings.Contains(msg, "Stopped") || strings.Contains(msg, "interface")) {
						d.say("%s: %s", x.Host.Name, msg)
					}
				}
				seen[i] = consumed
			}
		}
		for {
			select {
			case <-done:
				scan()
				return
			case <-time.After(5 * time.Millisecond):
				scan()
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(done); <-finished })
	}
}

// logMessage returns the msg of a log/slog JSON record.
func logMessage(line string) (string, bool) {
	var rec struct {
		Msg string `json:"msg"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Msg == "" {
		return "", false
	}
	return rec.Msg, true
}
