package config

import (
	"fmt"
	"sort"
	"strings"
)

// Diag is one problem found in a configuration, at a place.
type Diag struct {
	Pos Pos
	Msg string
}

func (d Diag) String() string { return d.Pos.String() + ": " + d.Msg }

// Error is returned by Load and Parse when a configuration has errors. It holds
// every error found, in file order.
type Error struct {
	Diags []Diag
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Diags))
	for i, d := range e.Diags {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

type diags struct {
	errs, warns []Diag
}

func (d *diags) errorf(pos Pos, format string, args ...any) {
	d.errs = append(d.errs, Diag{pos, fmt.Sprintf(format, args...)})
}

func (d *diags) warnf(pos Pos, format string, args ...any) {
	d.warns = append(d.warns, Diag{pos, fmt.Sprintf(format, args...)})
}

func sortDiags(ds []Diag) {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Pos.File != ds[j].Pos.File {
			return ds[i].Pos.File < ds[j].Pos.File
		}
		return ds[i].Pos.Line < ds[j].Pos.Line
	})
}
