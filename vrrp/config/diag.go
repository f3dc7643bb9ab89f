package config

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
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
	fileOrder   map[string]int // files in the order they were first read
}

func (d *diags) errorf(pos Pos, format string, args ...any) {
	d.errs = append(d.errs, Diag{pos, clip(fmt.Sprintf(format, args...))})
}

func (d *diags) warnf(pos Pos, format string, args ...any) {
	d.warns = append(d.warns, Diag{pos, clip(fmt.Sprintf(format, args...))})
}

// maxMsg bounds a message: one that quotes a word of a megabyte helps nobody,
// and a few of them would hold the file many times over.
const maxMsg = 1024

func clip(msg string) string {
	if len(msg) <= maxMsg {
		return msg
	}
	cut := maxMsg
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… (%d bytes more)", msg[:cut], len(msg)-cut)
}

// sort orders diagnostics as a reader meets them: by file, in the order the files
// were read, then by line.
func (d *diags) sort() {
	less := func(ds []Diag) func(i, j int) bool {
		return func(i, j int) bool {
			a, b := ds[i].Pos, ds[j].Pos
			if a.File != b.File {
				return d.fileOrder[a.File] < d.fileOrder[b.File]
			}
			return a.Line < b.Line
		}
	}
	sort.SliceStable(d.errs, less(d.errs))
	sort.SliceStable(d.warns, less(d.warns))
}
