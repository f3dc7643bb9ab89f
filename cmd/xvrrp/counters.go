package main

import (
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/xvrrp/xvrrp/vrrp/agent"
)

// printCounters prints each instance's counters that are not zero, under
// their JSON names (keepalived's where keepalived has one).
func printCounters(w io.Writer, st agent.Status) {
	for _, in := range st.Instances {
		if in.Counters == nil {
			continue
		}
		name := in.Name
		if name == "" {
			name = fmt.Sprintf("%s VRID %d %s", in.Interface, in.VRID, in.Family)
		}
		fmt.Fprintf(w, "%s counters: %s\n", name, orDash(strings.Join(nonZero(*in.Counters), " ")))
	}
}

// nonZero lists the counters that are not zero as name=value, in the
// struct's order, drops by reason last.
func nonZero(c agent.CounterStatus) []string {
	var out []string
	v, t := reflect.ValueOf(c), reflect.TypeOf(c)
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if f := v.Field(i); f.Kind() == reflect.Uint64 && f.Uint() > 0 {
			out = append(out, fmt.Sprintf("%s=%d", name, f.Uint()))
		}
	}
	var drops []string
	for r, n := range c.Dropped {
		drops = append(drops, fmt.Sprintf("dropped.%s=%d", r, n))
	}
	slices.Sort(drops)
	return append(out, drops...)
}
