package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// parseRoute reads a virtual_routes line as keepalived.conf(5) writes it:
//
//	[blackhole|unreachable|prohibit|throw] [src ADDR] [to] PREFIX [via|gw ADDR]
//	[dev NAME] [scope SCOPE] [table ID] [metric|preference|priority N] [onlink]
//
// Anything else keepalived takes there (or, proto, realms, encap, the
// per-route options like mtu) is refused rather than dropped.
func parseRoute(w []string) (Route, error) {
	r := Route{Words: w}
	i := 0
	next := func(kw string) (string, error) {
		if i+1 >= len(w) {
			return "", fmt.Errorf("%s needs a value", kw)
		}
		i++
		return w[i], nil
	}
	addr := func(kw string) (netip.Addr, error) {
		v, err := next(kw)
		if err != nil {
			return netip.Addr{}, err
		}
		a, err := netip.ParseAddr(v)
		if err != nil || a.Zone() != "" {
			return netip.Addr{}, fmt.Errorf("%s: '%s' is not an IP address", kw, v)
		}
		return a.Unmap(), nil
	}
	for ; i < len(w); i++ {
		var err error
		switch k := w[i]; k {
		case "blackhole", "unreachable", "prohibit", "throw":
			if i != 0 {
				return r, fmt.Errorf("the route type %s comes first", k)
			}
			r.Type = k
		case "src":
			r.Src, err = addr(k)
		case "to":
			var v string
			if v, err = next(k); err == nil {
				r.Dst, err = parsePrefix(v)
			}
		case "via", "gw":
			r.Via, err = addr(k)
		case "dev":
			r.Dev, err = next(k)
		case "scope":
			r.Scope, err = next(k)
			if err == nil && !validScope(r.Scope) {
				err = fmt.Errorf("scope '%s' is not host, link, global, site, nowhere or a number", r.Scope)
			}
		case "table":
			var v string
			if v, err = next(k); err == nil {
				r.Table, err = tableID(v)
			}
		case "metric", "preference", "priority":
			var v string
			if v, err = next(k); err == nil {
				r.Metric, err = strconv.Atoi(v)
				if err != nil || r.Metric < 0 {
					err = fmt.Errorf("%s: '%s' is not a whole number", k, v)
				}
			}
		case "onlink":
			r.OnLink = true
		case "no_track":
			r.NoTrack = true
		default:
			if p, perr := parsePrefix(k); perr == nil && !r.Dst.IsValid() {
				r.Dst = p
				continue
			}
			if k == "default" && !r.Dst.IsValid() {
				return r, fmt.Errorf("write default as 0.0.0.0/0 or ::/0")
			}
			return r, fmt.Errorf("not implemented: '%s' in a route (xvrrp takes a type, src, to, via/gw, dev, scope, table, metric, onlink, no_track)", k)
		}
		if err != nil {
			return r, err
		}
	}
	if !r.Dst.IsValid() {
		return r, fmt.Errorf("no destination prefix")
	}
	r.Dst = r.Dst.Masked()
	fam := r.Dst.Addr().Is4()
	for _, a := range []netip.Addr{r.Src, r.Via} {
		if a.IsValid() && a.Is4() != fam {
			return r, fmt.Errorf("%v and %v are of different families", a, r.Dst)
		}
	}
	if r.Type == "" && !r.Via.IsValid() && r.Dev == "" {
		return r, fmt.Errorf("a route needs via/gw or dev")
	}
	return r, nil
}

// parseRule reads a virtual_rules line:
//
//	[from PREFIX|all] [to PREFIX|all] [iif NAME] [oif NAME] [fwmark N[/MASK]]
//	[preference|priority|pref N] table ID
func parseRule(w []string) (Rule, error) {
	r := Rule{Words: w}
	for i := 0; i < len(w); i++ {
		k := w[i]
		if k == "no_track" {
			r.NoTrack = true
			continue
		}
		if i+1 >= len(w) {
			return r, fmt.Errorf("%s needs a value", k)
		}
		i++
		v := w[i]
		var err error
		switch k {
		case "from", "to":
			var p netip.Prefix
			if v != "all" {
				if p, err = parsePrefix(v); err != nil {
					return r, fmt.Errorf("%s: '%s' is not a prefix", k, v)
				}
				p = p.Masked()
			}
			if k == "from" {
				r.From = p
			} else {
				r.To = p
			}
		case "table", "lookup":
			r.Table, err = tableID(v)
		case "preference", "priority", "pref":
			r.Priority, err = strconv.Atoi(v)
			if err != nil || r.Priority < 0 {
				err = fmt.Errorf("%s: '%s' is not a whole number", k, v)
			}
		case "iif":
			r.IIf = v
		case "oif":
			r.OIf = v
		case "fwmark":
			mark, mask, _ := strings.Cut(v, "/")
			m, err1 := strconv.ParseUint(mark, 0, 32)
			var mk uint64
			var err2 error
			if mask != "" {
				mk, err2 = strconv.ParseUint(mask, 0, 32)
			}
			if err1 != nil || err2 != nil {
				return r, fmt.Errorf("fwmark: '%s' is not MARK[/MASK]", v)
			}
			r.FwMark, r.FwMask, r.HasFwMark = uint32(m), uint32(mk), true
		default:
			return r, fmt.Errorf("not implemented: '%s' in a rule (xvrrp takes from, to, iif, oif, fwmark, preference, table, no_track)", k)
		}
		if err != nil {
			return r, err
		}
	}
	if r.Table == 0 {
		return r, fmt.Errorf("a rule needs a table")
	}
	switch {
	case r.From.IsValid() && r.To.IsValid() && r.From.Addr().Is4() != r.To.Addr().Is4():
		return r, fmt.Errorf("from %v and to %v are of different families", r.From, r.To)
	case r.From.IsValid() && r.From.Addr().Is6(), r.To.IsValid() && r.To.Addr().Is6():
		r.Family = IPv6
	default:
		r.Family = IPv4
	}
	return r, nil
}

func validScope(s string) bool {
	switch s {
	case "host", "link", "global", "universe", "site", "nowhere":
		return true
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 255
}

// tableID reads a routing table: a number, or main, local or default.
func tableID(s string) (int, error) {
	switch s {
	case "main":
		return 254, nil
	case "local":
		return 255, nil
	case "default":
		return 253, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 1<<31-1 {
		return 0, fmt.Errorf("table '%s' is not a number, main, local or default", s)
	}
	return n, nil
}
