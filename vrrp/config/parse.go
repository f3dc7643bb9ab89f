package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing/fstest"
	"time"

	"github.com/xvrrp/xvrrp/vrrp"
)

// Options tune Load.
type Options struct {
	// ConfigID selects lines starting @ID (and drops @^ID); keepalived's -i. The
	// default is the host name, as in keepalived.
	ConfigID string
	// FS, when set, is read instead of the real file system (tests, fuzzing).
	// Paths are then relative to its root.
	FS fs.FS
}

// Load reads and validates the configuration at path and every file it includes.
// On errors it returns a *Error holding all of them (warnings too are in
// Config.Warnings, and the Config is returned as far as it was read).
func Load(path string, opt Options) (*Config, error) {
	if opt.ConfigID == "" {
		opt.ConfigID, _ = os.Hostname()
	}
	d := &diags{fileOrder: map[string]int{}}
	lx := &lexer{fsys: opt.FS, configID: opt.ConfigID, defs: map[string]string{}, diags: d}
	lx.defs["_INSTANCE"] = opt.ConfigID
	lx.defs["_PWD"] = filepath.Dir(path)
	if abs, err := filepath.Abs(path); err == nil && opt.FS == nil {
		lx.defs["_PWD"] = filepath.Dir(abs)
	}
	lx.readFile(path, Pos{File: path})
	return parseLines(lx.lines, d)
}

// Parse reads a configuration from text, as if it were the file named name, with
// configuration id "xvrrp". It has no other files to include.
func Parse(name, text string) (*Config, error) {
	fsys := fstest.MapFS{strings.TrimPrefix(name, "/"): {Data: []byte(text)}}
	return Load(name, Options{FS: fsys, ConfigID: "xvrrp"})
}

func parseLines(lines []line, d *diags) (*Config, error) {
	return parseLinesWith(lines, d, nil)
}

func parseLinesWith(lines []line, d *diags, onTable func(string, map[string]handler)) (*Config, error) {
	p := &parser{diags: d, cfg: newConfig(), explicit: map[*Instance]map[string]Pos{}, badVIPs: map[*Instance]bool{}, onTable: onTable}
	p.top(buildTree(lines, d))
	p.validate()
	d.sort()
	p.cfg.Warnings = d.warns
	if len(d.errs) > 0 {
		return p.cfg, &Error{Diags: d.errs}
	}
	return p.cfg, nil
}

func newConfig() *Config {
	return &Config{Global: Global{
		Version:     2,
		McastGroup4: vrrp.Group4,
		McastGroup6: vrrp.Group6,
		Garp: Garp{
			MasterDelay: 5 * time.Second, MasterRepeat: 5, MasterRefreshRepeat: 1,
			LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5,
		},
		MaxAutoPriority:  -1,
		DownTimerAdverts: 3,
	}}
}

// node is a line with the block that follows it, if any.
type node struct {
	line
	block    []*node
	hasBlock bool
}

func (n *node) key() string { return n.words[0] }

func buildTree(lines []line, d *diags) []*node {
	type frame struct {
		owner *node
		nodes []*node
	}
	stack := []frame{{}}
	for _, l := range lines {
		top := &stack[len(stack)-1]
		switch l.words[0] {
		case "{":
			if len(top.nodes) == 0 || top.nodes[len(top.nodes)-1].hasBlock {
				d.errorf(l.pos, "'{' without a keyword before it")
				stack = append(stack, frame{owner: &node{line: l}})
				continue
			}
			owner := top.nodes[len(top.nodes)-1]
			owner.hasBlock = true
			stack = append(stack, frame{owner: owner})
		case "}":
			if len(stack) == 1 {
				d.errorf(l.pos, "'}' closes no block")
				continue
			}
			stack[len(stack)-1].owner.block = stack[len(stack)-1].nodes
			stack = stack[:len(stack)-1]
		default:
			top.nodes = append(top.nodes, &node{line: l})
		}
	}
	for len(stack) > 1 {
		f := stack[len(stack)-1]
		d.errorf(f.owner.pos, "block of '%s' is not closed: missing '}'", f.owner.key())
		f.owner.block = f.nodes
		stack = stack[:len(stack)-1]
	}
	return stack[0].nodes
}

type parser struct {
	diags *diags
	cfg   *Config
	// explicit records instance settings given in the file, for validation.
	explicit map[*Instance]map[string]Pos
	badVIPs  map[*Instance]bool
	// commands are every script and notify line, with their keyword, for
	// enable_script_security's rules.
	commands []keyedCommand
	// onTable, when set, sees every keyword table walk dispatches on, so that a
	// test can list every keyword the parser accepts.
	onTable func(ctx string, table map[string]handler)
	// lowerPrioDelaySet: global_defs gave vrrp_garp_lower_prio_delay.
	lowerPrioDelaySet bool
}

type keyedCommand struct {
	key string
	cmd *Command
}

func (p *parser) addCommand(key string, c *Command) {
	p.commands = append(p.commands, keyedCommand{key, c})
}

type handler func(n *node)

// walk dispatches each node of a block to its keyword's handler. Keywords of
// keepalived's other parts are warned about; known VRRP keywords xvrrp does not
// implement, and unknown ones, are errors.
func (p *parser) walk(ctx string, nodes []*node, table map[string]handler) {
	if p.onTable != nil {
		p.onTable(ctx, table)
	}
	for _, n := range nodes {
		key := n.key()
		if h, ok := table[key]; ok {
			h(n)
			continue
		}
		if why, ok := unsupported(key); ok {
			p.diags.errorf(n.pos, "%s: %s", key, why)
			continue
		}
		if part, ok := otherPart(key); ok {
			p.diags.warnf(n.pos, "%s is for keepalived's %s, not VRRP: ignored", key, part)
			continue
		}
		p.diags.errorf(n.pos, "unknown keyword '%s' in %s%s", key, ctx, suggest(key, table))
	}
}

func suggest(key string, table map[string]handler) string {
	best, bestD := "", 4
	for k := range table {
		// The distance is at least the difference in length: skip the
		// quadratic work for a word that cannot be near (a 1 MiB word would
		// cost seconds per keyword).
		if abs(len(key)-len(k)) >= bestD {
			continue
		}
		if d := editDistance(key, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean '%s'?)", best)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// Argument helpers. Each reports its own error and returns ok=false.

// args checks the number of words after the keyword.
func (p *parser) args(n *node, lo, hi int) bool {
	got := len(n.words) - 1
	if n.hasBlock {
		p.diags.errorf(n.pos, "%s takes no block", n.key())
		return false
	}
	if got < lo || got > hi {
		want := fmt.Sprintf("%d", lo)
		switch {
		case hi > lo && hi > 100:
			want = fmt.Sprintf("at least %d", lo)
		case hi > lo:
			want = fmt.Sprintf("%d to %d", lo, hi)
		}
		p.diags.errorf(n.pos, "%s takes %s argument(s), got %d", n.key(), want, got)
		return false
	}
	return true
}

func (p *parser) block(n *node) bool {
	if !n.hasBlock {
		p.diags.errorf(n.pos, "%s needs a block: %s { … }", n.key(), strings.Join(n.words, " "))
		return false
	}
	return true
}

func (p *parser) intArg(n *node, i, lo, hi int) (int, bool) {
	v, err := strconv.Atoi(n.words[i])
	if err != nil || v < lo || v > hi {
		p.diags.errorf(n.pos, "%s: '%s' is not a whole number from %d to %d", n.key(), n.words[i], lo, hi)
		return 0, false
	}
	return v, true
}

// secondsArg reads a decimal number of seconds, e.g. 1, 0.5 or 4.12.
func (p *parser) secondsArg(n *node, i int, lo, hi time.Duration) (time.Duration, bool) {
	s := n.words[i]
	d, err := time.ParseDuration(s + "s")
	if err != nil || strings.ContainsAny(s, "+-eE") || d < lo || d > hi {
		p.diags.errorf(n.pos, "%s: '%s' is not a number of seconds from %v to %v", n.key(), s, lo.Seconds(), hi.Seconds())
		return 0, false
	}
	return d, true
}

// durInto handles `keyword SECONDS` into dst.
func (p *parser) durInto(dst *time.Duration, hi time.Duration) handler {
	return func(n *node) {
		if p.args(n, 1, 1) {
			if d, ok := p.secondsArg(n, 1, 0, hi); ok {
				*dst = d
			}
		}
	}
}

// numInto handles `keyword N` into dst.
func (p *parser) numInto(dst *int, lo, hi int) handler {
	return func(n *node) {
		if p.args(n, 1, 1) {
			if v, ok := p.intArg(n, 1, lo, hi); ok {
				*dst = v
			}
		}
	}
}

func (p *parser) addrArg(n *node, s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		p.diags.errorf(n.pos, "%s: '%s' is not an IP address", n.key(), s)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// flag handles a keyword with no arguments, or with an optional boolean, as
// keepalived's strict_mode [on|off|true|false|yes|no].
func (p *parser) flag(n *node, dst *bool) {
	if !p.args(n, 0, 1) {
		return
	}
	if len(n.words) == 1 {
		*dst = true
		return
	}
	switch strings.ToLower(n.words[1]) {
	case "on", "true", "yes":
		*dst = true
	case "off", "false", "no":
		*dst = false
	default:
		p.diags.errorf(n.pos, "%s: '%s' is not one of on, off, true, false, yes, no", n.key(), n.words[1])
	}
}

func (p *parser) command(n *node, userOK bool) *Command {
	hi := 1
	if userOK {
		hi = 3
	}
	if !p.args(n, 1, hi) {
		return nil
	}
	c := &Command{Pos: n.pos, Line: n.words[1]}
	p.addCommand(n.key(), c)
	if len(n.words) > 2 {
		c.User = n.words[2]
	}
	if len(n.words) > 3 {
		c.Group = n.words[3]
	}
	return c
}

// top-level keywords

func (p *parser) top(nodes []*node) {
	p.walk("the top level", nodes, map[string]handler{
		"global_defs":        func(n *node) { p.global(n) },
		"vrrp_script":        func(n *node) { p.script(n) },
		"xvrrp_check":        func(n *node) { p.check(n) },
		"vrrp_instance":      func(n *node) { p.instance(n) },
		"vrrp_sync_group":    func(n *node) { p.syncGroup(n) },
		"garp_group":         func(n *node) { p.garpGroup(n) },
		"vrrp_track_file":    func(n *node) { p.trackFile(n) },
		"track_file":         func(n *node) { p.trackFile(n) },
		"vrrp_track_process": func(n *node) { p.trackProcess(n) },
		"track_process":      func(n *node) { p.trackProcess(n) },
	})
}

func (p *parser) named(n *node) (string, bool) {
	if len(n.words) != 2 {
		p.diags.errorf(n.pos, "%s needs a name: %s NAME { … }", n.key(), n.key())
		return "", false
	}
	return n.words[1], p.block(n)
}

func (p *parser) global(n *node) {
	if !p.block(n) {
		return
	}
	g := &p.cfg.Global
	dur, num := p.durInto, p.numInto
	flag := func(dst *bool) handler { return func(n *node) { p.flag(n, dst) } }
	fifo := func(dst **Fifo) handler {
		return func(n *node) {
			if p.args(n, 1, 3) {
				if *dst == nil {
					*dst = &Fifo{}
				}
				(*dst).Path = n.words[1]
			}
		}
	}
	fifoScript := func(dst **Fifo) handler {
		return func(n *node) {
			if c := p.command(n, true); c != nil {
				if *dst == nil {
					*dst = &Fifo{}
				}
				(*dst).Script = c
			}
		}
	}
	p.walk("global_defs", n.block, map[string]handler{
		"router_id": func(n *node) {
			if p.args(n, 1, 1) {
				g.RouterID = n.words[1]
			}
		},
		"vrrp_version": func(n *node) {
			if p.args(n, 1, 1) {
				if v, ok := p.intArg(n, 1, 2, 3); ok {
					g.Version = uint8(v)
				}
			}
		},
		"vrrp_mcast_group4": func(n *node) {
			if a, ok := p.mcast(n); ok {
				if !a.Is4() {
					p.diags.errorf(n.pos, "vrrp_mcast_group4: %v is not an IPv4 multicast address", a)
					return
				}
				g.McastGroup4 = a
			}
		},
		"vrrp_mcast_group6": func(n *node) {
			if a, ok := p.mcast(n); ok {
				if !a.Is6() || !a.IsLinkLocalMulticast() {
					p.diags.errorf(n.pos, "vrrp_mcast_group6: %v is not a link-local IPv6 multicast address (ffX2::)", a)
					return
				}
				g.McastGroup6 = a
			}
		},
		"vrrp_garp_master_delay":          dur(&g.Garp.MasterDelay, 255*time.Second),
		"vrrp_garp_master_repeat":         num(&g.Garp.MasterRepeat, 1, 255),
		"vrrp_garp_master_refresh":        dur(&g.Garp.MasterRefresh, 1<<31*time.Second),
		"vrrp_garp_master_refresh_repeat": num(&g.Garp.MasterRefreshRepeat, 1, 255),
		"vrrp_garp_lower_prio_repeat":     num(&g.Garp.LowerPrioRepeat, 0, 255),
		"vrrp_garp_lower_prio_delay": func(n *node) {
			dur(&g.Garp.LowerPrioDelay, 255*time.Second)(n)
			p.lowerPrioDelaySet = true
		},
		"vrrp_min_garp": func(n *node) {
			p.flag(n, &g.MinGarp)
			if g.MinGarp {
				// As keepalived: one ARP, no second burst, no refresh; the
				// vrrp_garp_* that follow it still apply.
				g.Garp.MasterDelay, g.Garp.MasterRepeat = 0, 1
				g.Garp.MasterRefresh, g.Garp.MasterRefreshRepeat = 0, 1
				g.Garp.LowerPrioDelay, g.Garp.LowerPrioRepeat = 0, 1
			}
		},
		"vrrp_startup_delay":      dur(&g.StartupDelay, time.Hour),
		"startup_script":          func(n *node) { g.StartupScript = p.command(n, true) },
		"shutdown_script":         func(n *node) { g.ShutdownScript = p.command(n, true) },
		"startup_script_timeout":  num(&g.StartupScriptTimeout, 1, 1000),
		"shutdown_script_timeout": num(&g.ShutdownScriptTimeout, 1, 1000),
		"enable_script_security":  flag(&g.EnableScriptSecurity),
		"script_user": func(n *node) {
			if p.args(n, 1, 2) {
				g.ScriptUser = n.words[1]
				if len(n.words) > 2 {
					g.ScriptGroup = n.words[2]
				}
			}
		},
		"vrrp_strict":              flag(&g.Strict),
		"vrrp_down_timer_adverts":  num(&g.DownTimerAdverts, 1, 100),
		"vrrp_check_unicast_src":   flag(&g.CheckUnicastSrc),
		"vrrp_skip_check_adv_addr": flag(&g.SkipCheckAdvAddr),
		"dynamic_interfaces": func(n *node) {
			if !p.args(n, 0, 1) {
				return
			}
			if len(n.words) == 2 {
				if n.words[1] == "allow_if_changes" {
					p.diags.errorf(n.pos, "dynamic_interfaces allow_if_changes: not implemented (keepalived's relaxed duplicate VRID check); use dynamic_interfaces alone")
				} else {
					p.diags.errorf(n.pos, "dynamic_interfaces: '%s' is not allow_if_changes", n.words[1])
				}
				return
			}
			g.DynamicInterfaces = true
		},
		"vrrp_garp_interval": dur(&g.GarpInterval, time.Second),
		"vmac_prefix": func(n *node) {
			if p.args(n, 1, 1) {
				g.VMACPrefix = n.words[1]
			}
		},
		"vmac_addr_prefix": func(n *node) {
			if p.args(n, 1, 1) {
				g.VMACAddrPrefix = n.words[1]
			}
		},
		"vrrp_garp_extra_if": func(n *node) {
			g.GarpExtraIf, g.GarpExtraIfAll, _ = p.extraIf(n)
		},
		"max_auto_priority": func(n *node) {
			g.MaxAutoPriority = 99 // keepalived: without a value, the highest
			if len(n.words) > 1 {
				num(&g.MaxAutoPriority, -1, 99)(n)
			} else {
				p.args(n, 0, 1)
			}
		},
		"min_auto_priority_delay": func(n *node) {
			// Microseconds, as keepalived counts them (at most 10 s).
			var us int
			num(&us, 1, 10_000_000)(n)
			g.MinAutoPriorityDelay = time.Duration(us) * time.Microsecond
		},
		"vrrp_gna_interval":            dur(&g.GnaInterval, time.Second),
		"vrrp_lower_prio_no_advert":    flag(&g.LowerPrioNoAdvert),
		"vrrp_higher_prio_send_advert": flag(&g.HigherPrioSendAdvert),
		"notify_fifo":                  fifo(&g.NotifyFifo),
		"notify_fifo_script":           fifoScript(&g.NotifyFifo),
		"vrrp_notify_fifo":             fifo(&g.VRRPNotifyFifo),
		"vrrp_notify_fifo_script":      fifoScript(&g.VRRPNotifyFifo),
		"vrrp_notify_priority_changes": flag(&g.NotifyPriorityChange),
		"default_interface": func(n *node) {
			if p.args(n, 1, 1) {
				g.DefaultInterface = n.words[1]
			}
		},
		"vrrp_rt_priority": num(&g.RTPriority, 1, 99),
		"vrrp_priority": func(n *node) {
			var nice int
			num(&nice, -20, 19)(n)
			g.Nice = &nice
		},
		"vrrp_rlimit_rttime": func(n *node) {
			// Microseconds, as keepalived counts them.
			var us int
			num(&us, 2, 1<<31-1)(n)
			g.RLimitRTTime = time.Duration(us) * time.Microsecond
		},
		"vrrp_no_swap": flag(&g.NoSwap),
		"vrrp_cpu_affinity": func(n *node) {
			if !p.args(n, 1, 1024) {
				return
			}
			g.CPUAffinity = nil
			for _, w := range n.words[1:] {
				c, err := strconv.Atoi(w)
				if err != nil || c < 0 || c >= 1024 {
					p.diags.errorf(n.pos, "vrrp_cpu_affinity: %q is not a CPU number (0 to 1023)", w)
					return
				}
				g.CPUAffinity = append(g.CPUAffinity, c)
			}
		},
	})
}

// extraIf reads garp_extra_if [all] N: seconds, at most a day, as keepalived.
func (p *parser) extraIf(n *node) (time.Duration, bool, bool) {
	if !p.args(n, 1, 2) {
		return 0, false, false
	}
	all := len(n.words) == 3
	if all && n.words[1] != "all" {
		p.diags.errorf(n.pos, "%s: '%s' is not all", n.key(), n.words[1])
		return 0, false, false
	}
	d, ok := p.secondsArg(n, len(n.words)-1, 0, 24*time.Hour)
	return d, all, ok
}

func (p *parser) mcast(n *node) (netip.Addr, bool) {
	if !p.args(n, 1, 1) {
		return netip.Addr{}, false
	}
	a, ok := p.addrArg(n, n.words[1])
	if ok && !a.IsMulticast() {
		p.diags.errorf(n.pos, "%s: %v is not a multicast address", n.key(), a)
		return a, false
	}
	return a, ok
}

func (p *parser) script(n *node) {
	name, ok := p.named(n)
	if !ok {
		return
	}
	s := &Script{Pos: n.pos, Name: name, Interval: time.Second, Rise: 1, Fall: 1}
	p.cfg.Scripts = append(p.cfg.Scripts, s)
	h := p.scriptHandlers(s)
	h["script"] = func(n *node) {
		if len(n.words) < 2 || n.hasBlock {
			p.diags.errorf(n.pos, "script needs the command to run: script \"/path/to/check args\"")
			return
		}
		// Unquoted, the rest of the line is the command, as in keepalived 2.
		s.Command = &Command{Pos: n.pos, Line: strings.Join(n.words[1:], " ")}
		p.addCommand("script", s.Command)
	}
	h["user"] = func(n *node) {
		if p.args(n, 1, 2) && s.Command != nil {
			s.Command.User = n.words[1]
			if len(n.words) > 2 {
				s.Command.Group = n.words[2]
			}
		}
	}
	p.walk("vrrp_script "+name, n.block, h)
	if s.Command == nil {
		p.diags.errorf(n.pos, "vrrp_script %s has no script", name)
	}
}

// check reads xvrrp_check, xvrrp's built-in health check: a vrrp_script whose
// test is a TCP connect or an HTTP GET instead of a program, tracked with
// track_script like any script.
func (p *parser) check(n *node) {
	name, ok := p.named(n)
	if !ok {
		return
	}
	s := &Script{Pos: n.pos, Name: name, Interval: time.Second, Rise: 1, Fall: 1, Check: &Check{Status: 200}}
	p.cfg.Scripts = append(p.cfg.Scripts, s)
	h := p.scriptHandlers(s)
	h["tcp_connect"] = func(n *node) {
		if !p.args(n, 1, 1) {
			return
		}
		if _, err := netip.ParseAddrPort(n.words[1]); err != nil {
			p.diags.errorf(n.pos, "tcp_connect: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:5432 or [::1]:5432)", n.words[1])
			return
		}
		s.Check.Kind, s.Check.Target = CheckTCP, n.words[1]
	}
	h["http_get"] = func(n *node) {
		if !p.args(n, 1, 1) {
			return
		}
		u, err := url.Parse(n.words[1])
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.diags.errorf(n.pos, "http_get: '%s' is not an http:// or https:// URL", n.words[1])
			return
		}
		s.Check.Kind, s.Check.Target = CheckHTTP, n.words[1]
	}
	h["status"] = func(n *node) {
		if p.args(n, 1, 1) {
			s.Check.Status, _ = p.intArg(n, 1, 100, 599)
		}
	}
	p.walk("xvrrp_check "+name, n.block, h)
	if s.Check.Kind == "" {
		p.diags.errorf(n.pos, "xvrrp_check %s has no test: add tcp_connect ADDRESS:PORT or http_get URL", name)
	}
}

// scriptHandlers are the keywords vrrp_script and xvrrp_check share.
func (p *parser) scriptHandlers(s *Script) map[string]handler {
	return map[string]handler{
		"interval": func(n *node) {
			if p.args(n, 1, 1) {
				if d, ok := p.secondsArg(n, 1, time.Millisecond, 1<<31*time.Second); ok {
					s.Interval = d
				}
			}
		},
		"timeout": func(n *node) {
			if p.args(n, 1, 1) {
				if d, ok := p.secondsArg(n, 1, time.Millisecond, 1<<31*time.Second); ok {
					s.Timeout = d
				}
			}
		},
		"weight": func(n *node) { s.Weight, s.Reverse = p.weight(n, 253) },
		"rise": func(n *node) {
			if p.args(n, 1, 1) {
				s.Rise, _ = p.intArg(n, 1, 1, 1<<31-1)
			}
		},
		"fall": func(n *node) {
			if p.args(n, 1, 1) {
				s.Fall, _ = p.intArg(n, 1, 1, 1<<31-1)
			}
		},
		"init_fail": func(n *node) {
			if p.args(n, 0, 0) {
				s.InitFail = true
			}
		},
	}
}

// weight reads `weight N [reverse|noreverse|no_reverse]`.
func (p *parser) weight(n *node, limit int) (int, bool) {
	if !p.args(n, 1, 2) {
		return 0, false
	}
	w, _ := p.intArg(n, 1, -limit, limit)
	reverse := false
	if len(n.words) > 2 {
		reverse = p.reverseWord(n, n.words[2])
	}
	return w, reverse
}

func (p *parser) reverseWord(n *node, w string) bool {
	switch w {
	case "reverse":
		return true
	case "noreverse", "no_reverse":
		return false
	}
	p.diags.errorf(n.pos, "%s: '%s' is not reverse or noreverse", n.key(), w)
	return false
}

func (p *parser) instance(n *node) {
	name, ok := p.named(n)
	if !ok {
		return
	}
	g := &p.cfg.Global
	in := &Instance{
		Pos: n.pos, Name: name, Priority: 100, Interval: time.Second, Preempt: true,
		Garp: g.Garp, DownTimerAdverts: g.DownTimerAdverts,
	}
	p.cfg.Instances = append(p.cfg.Instances, in)
	seen := map[string]Pos{}
	p.explicit[in] = seen
	set := func(h handler) handler {
		return func(n *node) {
			seen[n.key()] = n.pos
			h(n)
		}
	}
	dur := func(dst *time.Duration, hi time.Duration) handler { return set(p.durInto(dst, hi)) }
	num := func(dst *int, lo, hi int) handler { return set(p.numInto(dst, lo, hi)) }
	flag := func(dst *bool) handler { return set(func(n *node) { p.flag(n, dst) }) }
	notify := p.notifyHandlers(&in.Notify)
	notify["notify_master_rx_lower_pri"] = func(n *node) { in.Notify.MasterRxLowerPri = p.command(n, true) }

	table := map[string]handler{
		"state": set(func(n *node) {
			if p.args(n, 1, 1) {
				switch s := strings.ToUpper(n.words[1]); s {
				case "MASTER", "BACKUP":
					in.State = s
				default:
					p.diags.errorf(n.pos, "state: '%s' is not MASTER or BACKUP", n.words[1])
				}
			}
		}),
		"interface": set(func(n *node) {
			if p.args(n, 1, 1) {
				in.Interface = n.words[1]
			}
		}),
		"virtual_router_id": set(func(n *node) {
			if p.args(n, 1, 1) {
				if v, ok := p.intArg(n, 1, 1, 255); ok {
					in.VRID = uint8(v)
				}
			}
		}),
		"priority": set(func(n *node) {
			if p.args(n, 1, 1) {
				if v, ok := p.intArg(n, 1, 1, 255); ok {
					in.Priority = uint8(v)
				}
			}
		}),
		"advert_int": set(func(n *node) {
			if p.args(n, 1, 1) {
				if d, ok := p.secondsArg(n, 1, time.Millisecond, 255*time.Second); ok {
					in.Interval = d
				}
			}
		}),
		"version": set(func(n *node) {
			if p.args(n, 1, 1) {
				if v, ok := p.intArg(n, 1, 2, 3); ok {
					in.Version = uint8(v)
				}
			}
		}),
		"authentication": set(func(n *node) { p.auth(n, in) }),
		"virtual_ipaddress": set(func(n *node) {
			vips := p.vips(n)
			if len(vips) < len(n.block) {
				p.badVIPs[in] = true // reported line by line; no "no VIPs" on top
			}
			in.VIPs = append(in.VIPs, vips...)
		}),
		"virtual_routes": set(func(n *node) {
			if !p.block(n) {
				return
			}
			for _, l := range n.block {
				if l.hasBlock {
					p.diags.errorf(l.pos, "virtual_routes: a route takes no block")
					continue
				}
				r, err := parseRoute(l.words)
				if err != nil {
					p.diags.errorf(l.pos, "virtual_routes: %v", err)
					continue
				}
				r.Pos = l.pos
				in.Routes = append(in.Routes, r)
			}
		}),
		"virtual_rules": set(func(n *node) {
			if !p.block(n) {
				return
			}
			for _, l := range n.block {
				if l.hasBlock {
					p.diags.errorf(l.pos, "virtual_rules: a rule takes no block")
					continue
				}
				r, err := parseRule(l.words)
				if err != nil {
					p.diags.errorf(l.pos, "virtual_rules: %v", err)
					continue
				}
				r.Pos = l.pos
				in.Rules = append(in.Rules, r)
			}
		}),
		"unicast_ttl":         num(&in.UnicastTTL, 1, 255),
		"check_unicast_src":   flag(&in.CheckUnicastSrc),
		"v3_checksum_as_v2":   flag(&in.ChecksumAsV2),
		"skip_check_adv_addr": flag(&in.SkipCheckAdvAddr),
		"dont_track_primary": set(func(n *node) {
			if p.args(n, 0, 0) {
				in.DontTrackPrimary = true
			}
		}),
		"unicast_fault_no_peer": set(func(n *node) {
			if p.args(n, 0, 0) {
				in.UnicastFaultNoPeer = true
			}
		}),
		"virtual_ipaddress_excluded": set(func(n *node) {
			in.ExcludedVIPs = append(in.ExcludedVIPs, p.vips(n)...)
		}),
		"nopreempt":  set(func(n *node) { in.Preempt = !p.args(n, 0, 0) && in.Preempt }),
		"no_preempt": set(func(n *node) { in.Preempt = !p.args(n, 0, 0) && in.Preempt }),
		"preempt": set(func(n *node) {
			if p.args(n, 0, 0) {
				in.Preempt = true
			}
		}),
		"preempt_delay": dur(&in.PreemptDelay, 1000*time.Second),
		"accept": set(func(n *node) {
			if p.args(n, 0, 0) {
				in.Accept = true
			}
		}),
		"no_accept": set(func(n *node) {
			if p.args(n, 0, 0) {
				in.Accept = false
			}
		}),
		"mcast_src_ip": set(func(n *node) {
			if p.args(n, 1, 1) {
				in.McastSrcIP, _ = p.addrArg(n, n.words[1])
			}
		}),
		"mcast_dst_ip": set(func(n *node) {
			if a, ok := p.mcast(n); ok {
				in.McastDstIP = a
			}
		}),
		"unicast_src_ip": set(func(n *node) {
			if p.args(n, 1, 1) {
				in.UnicastSrcIP, _ = p.addrArg(n, n.words[1])
			}
		}),
		"unicast_peer": set(func(n *node) { p.unicastPeers(n, in) }),
		"track_interface": set(func(n *node) {
			in.TrackInterfaces = append(in.TrackInterfaces, p.trackInterfaces(n)...)
		}),
		"track_script":  set(func(n *node) { in.TrackScripts = append(in.TrackScripts, p.trackRefs(n, 253)...) }),
		"track_file":    set(func(n *node) { in.TrackFiles = append(in.TrackFiles, p.trackRefs(n, 254)...) }),
		"track_process": set(func(n *node) { in.TrackProcesses = append(in.TrackProcesses, p.trackRefs(n, 254)...) }),

		"garp_master_delay":          dur(&in.Garp.MasterDelay, 255*time.Second),
		"garp_master_repeat":         num(&in.Garp.MasterRepeat, 1, 255),
		"garp_master_refresh":        dur(&in.Garp.MasterRefresh, 1<<31*time.Second),
		"garp_master_refresh_repeat": num(&in.Garp.MasterRefreshRepeat, 1, 255),
		"garp_lower_prio_repeat":     num(&in.Garp.LowerPrioRepeat, 0, 255),
		"garp_lower_prio_delay":      dur(&in.Garp.LowerPrioDelay, 255*time.Second),
		"garp_extra_if": set(func(n *node) {
			in.GarpExtraIf, in.GarpExtraIfAll, _ = p.extraIf(n)
		}),
		"use_vmac":                set(func(n *node) { p.useVMAC(n, in) }),
		"vmac_xmit_base":          flag(&in.VMACXmitBase),
		"use_vmac_addr":           flag(&in.UseVMACAddr),
		"strict_mode":             flag(&in.Strict),
		"down_timer_adverts":      num(&in.DownTimerAdverts, 1, 100),
		"promote_secondaries":     flag(&in.PromoteSecondaries),
		"track_src_ip":            flag(&in.TrackSrcIP),
		"lower_prio_no_advert":    flag(&in.LowerPrioNoAdvert),
		"higher_prio_send_advert": flag(&in.HigherPrioSendAdvert),
		"fast_liveness":           set(func(n *node) { p.liveness(n, in) }),
		"native_ipv6": set(func(n *node) {
			if p.args(n, 0, 0) {
				p.diags.warnf(n.pos, "native_ipv6 is deprecated: the VIPs' family decides")
			}
		}),
		"debug": set(func(n *node) {
			if p.args(n, 0, 1) {
				p.diags.warnf(n.pos, "debug: keepalived never implemented it; ignored")
			}
		}),
	}
	for k, h := range notify {
		table[k] = set(h)
	}
	p.walk("vrrp_instance "+name, n.block, table)
}

func (p *parser) notifyHandlers(nt *Notify) map[string]handler {
	cmd := func(dst **Command) handler { return func(n *node) { *dst = p.command(n, true) } }
	return map[string]handler{
		"notify_master": cmd(&nt.Master),
		"notify_backup": cmd(&nt.Backup),
		"notify_fault":  cmd(&nt.Fault),
		"notify_stop":   cmd(&nt.Stop),
		"notify":        cmd(&nt.Any),
		"notify_deleted": func(n *node) {
			p.diags.warnf(n.pos, "notify_deleted has no effect: an instance a reload removes runs its notify_stop")
			if len(n.words) == 1 {
				nt.Deleted = &Command{Pos: n.pos}
				return
			}
			nt.Deleted = p.command(n, true)
		},
		"notify_priority_changes": func(n *node) { p.flag(n, &nt.PriorityChanges) },
	}
}

// liveness reads fast_liveness, an xvrrp extension (keepalived refuses the
// block as an unknown keyword, as it does xvrrp_check).
func (p *parser) liveness(n *node, in *Instance) {
	if !p.block(n) {
		return
	}
	l := &Liveness{Pos: n.pos, Interval: LivenessInterval, Multiplier: LivenessMultiplier}
	in.Liveness = l
	p.walk("fast_liveness", n.block, map[string]handler{
		"interval": func(n *node) {
			if !p.args(n, 1, 1) {
				return
			}
			if d, ok := livenessInterval(n.words[1]); ok {
				l.Interval = d
				return
			}
			p.diags.errorf(n.pos, "interval: '%s' is not a duration from %v to %v (e.g. 1ms, 500us, 0.002 for seconds)", n.words[1], LivenessMinInterval, LivenessMaxInterval)
		},
		"multiplier": func(n *node) {
			if p.args(n, 1, 1) {
				if v, ok := p.intArg(n, 1, 1, 255); ok {
					l.Multiplier = v
				}
			}
		},
	})
}

// livenessInterval reads a duration with its unit (1ms, 500us, 1s) or, as
// keepalived's intervals, a bare number of seconds.
func livenessInterval(s string) (time.Duration, bool) {
	if strings.ContainsAny(s, "+-eE") {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		d, err = time.ParseDuration(s + "s")
	}
	return d, err == nil && d >= LivenessMinInterval && d <= LivenessMaxInterval
}

func (p *parser) auth(n *node, in *Instance) {
	if !p.block(n) {
		return
	}
	p.walk("authentication", n.block, map[string]handler{
		"auth_type": func(n *node) {
			if !p.args(n, 1, 1) {
				return
			}
			switch strings.ToUpper(n.words[1]) {
			case "PASS":
				in.AuthType = 1
			case "AH":
				in.AuthType = 2 // refused below; keeps validation from piling on
				p.diags.errorf(n.pos, "auth_type AH (IPsec AH, removed from VRRP by RFC 3768) is not implemented by xvrrp; use PASS or none")
			default:
				p.diags.errorf(n.pos, "auth_type: '%s' is not PASS or AH", n.words[1])
			}
		},
		"auth_pass": func(n *node) {
			if !p.args(n, 1, 1) {
				return
			}
			in.AuthPass = n.words[1]
			if len(in.AuthPass) > 8 {
				p.diags.warnf(n.pos, "auth_pass: only the first 8 characters are used, as in keepalived")
				in.AuthPass = in.AuthPass[:8]
			}
		},
	})
}

// vips reads a virtual_ipaddress block: one address per line with options, as
// `ip address add` takes them.
func (p *parser) vips(n *node) []VIP {
	if !p.block(n) {
		return nil
	}
	var out []VIP
	for _, l := range n.block {
		if l.hasBlock {
			p.diags.errorf(l.pos, "%s: an address takes no block", n.key())
			continue
		}
		v, ok := p.vip(l)
		if ok {
			out = append(out, v)
		}
	}
	return out
}

func (p *parser) vip(l *node) (VIP, bool) {
	v := VIP{Pos: l.pos}
	w := l.words
	pfx, err := parsePrefix(w[0])
	if err != nil {
		p.diags.errorf(l.pos, "'%s' is not an IP address or address/prefix", w[0])
		return v, false
	}
	v.Prefix = pfx
	value := func(i int) (string, bool) {
		if i+1 >= len(w) {
			p.diags.errorf(l.pos, "%s: '%s' needs a value", w[0], w[i])
			return "", false
		}
		return w[i+1], true
	}
	ok := true
	for i := 1; i < len(w); i++ {
		if why, refused := vipOptionRefused[w[i]]; refused {
			p.diags.errorf(l.pos, "%s: address option %s: %s", w[0], w[i], why)
			ok = false
			continue
		}
		switch w[i] {
		case "dev", "label", "scope", "brd", "broadcast", "peer", "preferred_lft":
			val, has := value(i)
			if !has {
				return v, false
			}
			i++
			switch w[i-1] {
			case "brd", "broadcast":
				if a, err := netip.ParseAddr(val); err != nil || !a.Is4() || !pfx.Addr().Is4() {
					p.diags.errorf(l.pos, "%s: brd '%s' is not an IPv4 address for an IPv4 address", w[0], val)
					ok = false
				}
				v.Broadcast = val
			case "peer":
				if v.Peer, has = p.addrArg(l, val); !has {
					ok = false
				} else if v.Peer.Is4() != pfx.Addr().Is4() {
					p.diags.errorf(l.pos, "%s: peer %v is of another family", w[0], v.Peer)
					ok = false
				}
			case "preferred_lft":
				if n, err := strconv.ParseUint(val, 10, 32); val != "forever" && (err != nil || n == 1<<32-1) {
					p.diags.errorf(l.pos, "%s: preferred_lft '%s' is not forever or a number of seconds", w[0], val)
					ok = false
				}
				v.PreferredLFT = val
			case "dev":
				v.Dev = val
			case "label":
				v.Label = val
			case "scope":
				switch val {
				case "site", "link", "host", "nowhere", "global":
					v.Scope = val
				default:
					p.diags.errorf(l.pos, "%s: scope '%s' is not site, link, host, nowhere or global", w[0], val)
					ok = false
				}
			}
		case "-nodad", "nodad":
			v.NoDAD = true
		case "home":
			v.Home = true
		case "mngtmpaddr":
			v.MngTmpAddr = true
		case "autojoin":
			v.AutoJoin = true
		case "noprefixroute":
			v.NoPrefixRt = true
		case "no_track":
			v.NoTrack = true
		case "use_vmac":
			v.UseVMAC = true
		case "track_group":
			p.diags.errorf(l.pos, "%s: track_group applies to static addresses, which xvrrp does not manage", w[0])
			ok = false
			i++
		default:
			hint := ""
			if _, err := parsePrefix(w[i]); err == nil {
				hint = "; write one address per line (keepalived ignores the second one)"
			}
			p.diags.errorf(l.pos, "%s: '%s' is not an address option (dev, label, scope, brd, peer, home, -nodad, mngtmpaddr, noprefixroute, autojoin, no_track, use_vmac, preferred_lft)%s", w[0], w[i], hint)
			ok = false
		}
	}
	return v, ok
}

// parsePrefix reads ADDR or ADDR/BITS; a bare address is a host prefix, as in
// keepalived (/32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			return pf, err
		}
		return netip.PrefixFrom(pf.Addr().Unmap(), pf.Bits()), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("not an address")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (p *parser) unicastPeers(n *node, in *Instance) {
	if !p.block(n) {
		return
	}
	for _, l := range n.block {
		if l.hasBlock {
			p.diags.errorf(l.pos, "unicast_peer: a peer takes no block")
			continue
		}
		a, ok := p.addrArg(l, l.words[0])
		if !ok {
			continue
		}
		peer := UnicastPeer{Addr: a, MinTTL: 0, MaxTTL: 255}
		for i := 1; i < len(l.words); i++ {
			if (l.words[i] == "min_ttl" || l.words[i] == "max_ttl") && i+1 < len(l.words) {
				v, err := strconv.Atoi(l.words[i+1])
				if err != nil || v < 0 || v > 255 {
					p.diags.errorf(l.pos, "unicast_peer %v: %s '%s' is not 0 to 255", a, l.words[i], l.words[i+1])
				} else if l.words[i] == "min_ttl" {
					peer.MinTTL = v
				} else {
					peer.MaxTTL = v
				}
				i++
				continue
			}
			p.diags.errorf(l.pos, "unicast_peer %v: '%s' is not min_ttl N or max_ttl N", a, l.words[i])
		}
		if peer.MinTTL > peer.MaxTTL {
			p.diags.errorf(l.pos, "unicast_peer %v: min_ttl %d is above max_ttl %d: no advert could arrive", a, peer.MinTTL, peer.MaxTTL)
		}
		in.UnicastPeers = append(in.UnicastPeers, peer)
	}
}

func (p *parser) trackInterfaces(n *node) []TrackInterface {
	if !p.block(n) {
		return nil
	}
	var out []TrackInterface
	for _, l := range n.block {
		t := TrackInterface{Pos: l.pos, Name: l.words[0]}
		if !p.trackTail(l, &t.Reverse, func(w int) { t.Weight = w }, 253) {
			continue
		}
		out = append(out, t)
	}
	return out
}

func (p *parser) trackRefs(n *node, limit int) []TrackRef {
	if !p.block(n) {
		return nil
	}
	var out []TrackRef
	for _, l := range n.block {
		t := TrackRef{Pos: l.pos, Name: l.words[0]}
		if !p.trackTail(l, &t.Reverse, func(w int) { t.Weight = &w }, limit) {
			continue
		}
		out = append(out, t)
	}
	return out
}

// trackTail reads what follows a tracked name: [weight N] [reverse|noreverse].
func (p *parser) trackTail(l *node, reverse *bool, setWeight func(int), limit int) bool {
	if l.hasBlock {
		p.diags.errorf(l.pos, "%s takes no block here", l.words[0])
		return false
	}
	w := l.words
	for i := 1; i < len(w); i++ {
		switch w[i] {
		case "weight":
			if i+1 >= len(w) {
				p.diags.errorf(l.pos, "%s: weight needs a value", w[0])
				return false
			}
			v, err := strconv.Atoi(w[i+1])
			if err != nil || v < -limit || v > limit {
				p.diags.errorf(l.pos, "%s: weight '%s' is not a whole number from %d to %d", w[0], w[i+1], -limit, limit)
				return false
			}
			setWeight(v)
			i++
		case "reverse", "noreverse", "no_reverse":
			*reverse = w[i] == "reverse"
		default:
			p.diags.errorf(l.pos, "%s: '%s' is not weight N, reverse or noreverse", w[0], w[i])
			return false
		}
	}
	return true
}

func (p *parser) syncGroup(n *node) {
	name, ok := p.named(n)
	if !ok {
		return
	}
	sg := &SyncGroup{Pos: n.pos, Name: name}
	p.cfg.SyncGroups = append(p.cfg.SyncGroups, sg)
	table := p.notifyHandlers(&sg.Notify)
	table["group"] = func(n *node) {
		if !p.block(n) {
			return
		}
		for _, l := range n.block {
			if len(l.words) != 1 || l.hasBlock {
				p.diags.errorf(l.pos, "group: one vrrp_instance name per line")
				continue
			}
			sg.Members = append(sg.Members, l.words[0])
		}
	}
	table["track_interface"] = func(n *node) { sg.TrackInterfaces = append(sg.TrackInterfaces, p.trackInterfaces(n)...) }
	table["track_script"] = func(n *node) { sg.TrackScripts = append(sg.TrackScripts, p.trackRefs(n, 253)...) }
	table["track_file"] = func(n *node) { sg.TrackFiles = append(sg.TrackFiles, p.trackRefs(n, 254)...) }
	table["track_process"] = func(n *node) { sg.TrackProcesses = append(sg.TrackProcesses, p.trackRefs(n, 254)...) }
	table["sync_group_tracking_weight"] = func(n *node) { p.flag(n, &sg.TrackingWeight) }
	table["global_tracking"] = func(n *node) {
		if p.args(n, 0, 0) {
			p.diags.warnf(n.pos, "global_tracking is deprecated: track on the sync group instead (treated as sync_group_tracking_weight)")
			sg.TrackingWeight = true
		}
	}
	p.walk("vrrp_sync_group "+name, n.block, table)
}

// garpGroup reads a garp_group block. keepalived's interfaces { … } spreads
// one group's limits over several interfaces together; xvrrp spaces each
// instance's rounds and has nothing to share them across, so it is refused.
func (p *parser) garpGroup(n *node) {
	if !p.block(n) {
		return
	}
	g := &GarpGroup{Pos: n.pos}
	p.walk("garp_group", n.block, map[string]handler{
		"garp_interval": p.durInto(&g.GarpInterval, time.Second),
		"gna_interval":  p.durInto(&g.GnaInterval, time.Second),
		"interface": func(n *node) {
			if p.args(n, 1, 1) {
				g.Interface = n.words[1]
			}
		},
		"interfaces": func(n *node) {
			p.diags.errorf(n.pos, "garp_group interfaces: not implemented: xvrrp spaces each instance's rounds and shares no limit across interfaces; give each interface its own garp_group with interface")
		},
	})
	if g.Interface == "" {
		p.diags.errorf(n.pos, "garp_group needs an interface")
		return
	}
	if p.cfg.GarpGroupOf(g.Interface) != nil {
		p.diags.errorf(n.pos, "garp_group: interface %s is in another garp_group", g.Interface)
		return
	}
	p.cfg.GarpGroups = append(p.cfg.GarpGroups, g)
}

func (p *parser) trackFile(n *node) {
	name, ok := p.named(n)
	if !ok {
		return
	}
	t := &TrackFile{Pos: n.pos, Name: name, Weight: 1}
	p.cfg.TrackFiles = append(p.cfg.TrackFiles, t)
	p.walk(n.key()+" "+name, n.block, map[string]handler{
		"file": func(n *node) {
			if p.args(n, 1, 1) {
				t.File = n.words[1]
			}
		},
		"weight": func(n *node) { t.Weight, t.Reverse = p.weight(n, 254) },
		"init_file": func(n *node) {
			if !p.args(n, 0, 2) {
				return
			}
			t.InitFile = true
			for _, w := range n.words[1:] {
				if w == "overwrite" {
					t.Overwrite = true
				} else if v, err := strconv.Atoi(w); err == nil {
					t.InitValue = v
				} else {
					p.diags.errorf(n.pos, "init_file: '%s' is not a number or overwrite", w)
				}
			}
		},
	})
	if t.File == "" {
		p.diags.errorf(n.pos, "%s %s has no file", n.key(), name)
	}
}

func (p *parser) trackProcess(n *node) {
	name, ok := p.named(n)
	if !ok {
		return
	}
	t := &TrackProcess{Pos: n.pos, Name: name, Weight: 0, Quorum: 1}
	p.cfg.TrackProcesses = append(p.cfg.TrackProcesses, t)
	num := p.numInto
	dur := func(dst *time.Duration) handler { return p.durInto(dst, time.Hour) }
	p.walk(n.key()+" "+name, n.block, map[string]handler{
		"process": func(n *node) {
			if len(n.words) < 2 || n.hasBlock {
				p.diags.errorf(n.pos, "process needs a name: process NAME [PARAMETERS…]")
				return
			}
			t.Process = n.words[1]
			t.Params = strings.Join(n.words[2:], " ")
		},
		"param_match": func(n *node) {
			if p.args(n, 1, 1) {
				switch n.words[1] {
				case "initial", "partial":
					t.ParamMatch = n.words[1]
				default:
					p.diags.errorf(n.pos, "param_match: '%s' is not initial or partial", n.words[1])
				}
			}
		},
		"full_command":    func(n *node) { p.flag(n, &t.FullCommand) },
		"weight":          func(n *node) { t.Weight, t.Reverse = p.weight(n, 254) },
		"quorum":          num(&t.Quorum, 1, 1<<31-1),
		"quorum_max":      num(&t.QuorumMax, 1, 1<<31-1),
		"fork_delay":      dur(&t.ForkDelay),
		"terminate_delay": dur(&t.TerminateDelay),
		"delay": func(n *node) {
			dur(&t.ForkDelay)(n)
			t.TerminateDelay = t.ForkDelay
		},
	})
	if t.Process == "" {
		p.diags.errorf(n.pos, "vrrp_track_process %s has no process", name)
	}
	if t.QuorumMax != 0 && t.QuorumMax < t.Quorum {
		p.diags.errorf(n.pos, "vrrp_track_process %s: quorum_max %d is below quorum %d", name, t.QuorumMax, t.Quorum)
	}
}

// useVMAC reads `use_vmac [NAME] [MAC]` as keepalived: a word with four or
// more colons is the MAC (five octets take the VRID as the sixth), any other
// the interface's name. Validation fills in the defaults.
func (p *parser) useVMAC(n *node, in *Instance) {
	if !p.args(n, 0, 2) {
		return
	}
	in.UseVMAC = true
	for _, w := range n.words[1:] {
		if strings.Count(w, ":") >= 4 {
			in.VMACAddr = w
		} else {
			in.VMACName = w
		}
	}
}
