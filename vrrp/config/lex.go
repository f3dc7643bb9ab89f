package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Pos is a place in a configuration file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	switch {
	case p.File == "":
		return fmt.Sprintf("line %d", p.Line)
	case p.Line == 0:
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// line is one logical line after comments, includes, conditional lines and
// definitions have been dealt with. Braces are lines of their own, as in
// keepalived's reader.
type line struct {
	pos   Pos
	words []string
	raw   string // the text the words came from, quotes intact, for scripts
}

const maxIncludeDepth = 32

type lexer struct {
	fsys     fs.FS // nil: the real file system
	configID string
	defs     map[string]string
	lines    []line
	diags    *diags
	depth    int
}

func (lx *lexer) readFile(path string, from Pos) {
	if _, ok := lx.diags.fileOrder[path]; !ok {
		lx.diags.fileOrder[path] = len(lx.diags.fileOrder)
	}
	data, err := lx.read(path)
	if err != nil {
		lx.diags.errorf(from, "read %s: %v", path, err)
		return
	}
	lx.depth++
	defer func() { lx.depth-- }()
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	phys := strings.Split(text, "\n")
	for i := 0; i < len(phys); i++ {
		pos := Pos{path, i + 1}
		s := lx.decomment(phys[i], pos)
		if s == "" {
			continue
		}
		if s[0] == '@' {
			var ok bool
			if s, ok = lx.conditional(s); !ok {
				continue
			}
		}
		if s[0] == '$' {
			if name, val, ok := definition(s); ok {
				// A definition ending in \ goes on over the next lines.
				for strings.HasSuffix(val, `\`) && i+1 < len(phys) {
					i++
					next := lx.decomment(phys[i], Pos{path, i + 1})
					val = strings.TrimRight(strings.TrimSuffix(val, `\`), " \t") + "\n" + next
				}
				lx.defs[name] = strings.TrimSuffix(val, `\`)
				continue
			}
		}
		if strings.HasPrefix(s, "~SEQ") {
			lx.diags.errorf(pos, "~SEQ blocks are not supported; write the lines out")
			continue
		}
		for _, l := range strings.Split(lx.substitute(s, pos), "\n") {
			lx.logical(strings.TrimSpace(l), pos)
		}
	}
}

func (lx *lexer) read(path string) ([]byte, error) {
	if lx.fsys != nil {
		return fs.ReadFile(lx.fsys, strings.TrimPrefix(filepath.ToSlash(path), "/"))
	}
	return os.ReadFile(path)
}

// logical handles include, then splits a line at braces outside quotes. Include
// comes first, as in keepalived, so a pattern may hold {a,b}.
func (lx *lexer) logical(s string, pos Pos) {
	if strings.HasPrefix(s, "include") {
		if words, err := splitWords(s); err == nil && len(words) == 2 && words[0] == "include" {
			lx.include(words[1], pos)
			return
		}
	}
	for s != "" {
		i := braceIndex(s)
		var part string
		switch {
		case i < 0:
			part, s = s, ""
		case i == 0:
			part, s = s[:1], strings.TrimSpace(s[1:])
		default:
			part, s = strings.TrimSpace(s[:i]), s[i:]
		}
		if part == "" {
			continue
		}
		words, err := splitWords(part)
		if err != nil {
			lx.diags.errorf(pos, "%v", err)
			continue
		}
		lx.lines = append(lx.lines, line{pos: pos, words: words, raw: part})
	}
}

func braceIndex(s string) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case '{', '}':
			if !quoted {
				return i
			}
		}
	}
	return -1
}

// include reads every file matching pattern, relative to the including file's
// directory, in sorted order, like keepalived's glob(3) with GLOB_BRACE.
func (lx *lexer) include(pattern string, pos Pos) {
	if lx.depth >= maxIncludeDepth {
		lx.diags.errorf(pos, "include %s: nested more than %d deep (an include loop?)", pattern, maxIncludeDepth)
		return
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(pos.File), pattern)
	}
	var matches []string
	for _, p := range expandBraces(pattern) {
		m, err := lx.glob(p)
		if err != nil {
			lx.diags.errorf(pos, "include %s: %v", pattern, err)
			return
		}
		matches = append(matches, m...)
	}
	sort.Strings(matches)
	n := 0
	for _, m := range matches {
		if info, err := lx.stat(m); err != nil || info.IsDir() {
			continue
		}
		n++
		lx.readFile(m, pos)
	}
	if n == 0 {
		// keepalived carries on too; a missing file may be intended (conf.d/*.conf).
		lx.diags.warnf(pos, "include %s: no files match", pattern)
	}
}

func (lx *lexer) glob(pattern string) ([]string, error) {
	if lx.fsys == nil {
		return filepath.Glob(pattern)
	}
	m, err := fs.Glob(lx.fsys, strings.TrimPrefix(filepath.ToSlash(pattern), "/"))
	for i := range m {
		if strings.HasPrefix(pattern, "/") {
			m[i] = "/" + m[i]
		}
	}
	return m, err
}

func (lx *lexer) stat(path string) (fs.FileInfo, error) {
	if lx.fsys == nil {
		return os.Stat(path)
	}
	return fs.Stat(lx.fsys, strings.TrimPrefix(filepath.ToSlash(path), "/"))
}

// expandBraces expands {a,b} alternatives as GLOB_BRACE does.
func expandBraces(p string) []string {
	open := strings.IndexByte(p, '{')
	if open < 0 {
		return []string{p}
	}
	depth := 0
	var alts []string
	start := open + 1
	for i := open; i < len(p); i++ {
		switch p[i] {
		case '{':
			depth++
		case ',':
			if depth == 1 {
				alts = append(alts, p[start:i])
				start = i + 1
			}
		case '}':
			depth--
			if depth == 0 {
				alts = append(alts, p[start:i])
				var out []string
				for _, a := range alts {
					out = append(out, expandBraces(p[:open]+a+p[i+1:])...)
				}
				return out
			}
		}
	}
	return []string{p}
}

// decomment removes a comment (# or ! outside double quotes, unless escaped with a
// backslash) and surrounding white space.
func (lx *lexer) decomment(s string, pos Pos) string {
	var b strings.Builder
	quoted := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quoted = !quoted
		case c == '\\' && !quoted && i+1 < len(s) && (s[i+1] == '#' || s[i+1] == '!'):
			i++
			c = s[i]
		case (c == '#' || c == '!') && !quoted:
			return strings.TrimSpace(b.String())
		}
		b.WriteByte(c)
	}
	if quoted {
		lx.diags.errorf(pos, "unterminated quote")
	}
	return strings.TrimSpace(b.String())
}

// conditional handles a line starting @ID or @^ID: kept, without the prefix, when
// the configuration id matches (or, for @^, does not).
func (lx *lexer) conditional(s string) (string, bool) {
	neg := strings.HasPrefix(s, "@^")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "@^"), "@")
	end := strings.IndexAny(s, " \t")
	if end < 0 || (s[:end] == lx.configID) == neg {
		return "", false
	}
	rest := strings.TrimSpace(s[end:])
	return rest, rest != ""
}

// definition parses $NAME=VALUE.
func definition(s string) (name, value string, ok bool) {
	name, value, ok = strings.Cut(s[1:], "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" || !isIdent(name) {
		return "", "", false
	}
	return name, strings.TrimSpace(value), true
}

func isIdent(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// substitute replaces $NAME and ${NAME} with their definitions. A multi-line
// definition is only expanded where it stands alone on its line.
func (lx *lexer) substitute(s string, pos Pos) string {
	if !strings.Contains(s, "$") || len(lx.defs) == 0 {
		return s
	}
	for range 16 { // definitions may use definitions; bound the expansion
		var b strings.Builder
		changed := false
		for i := 0; i < len(s); i++ {
			if s[i] != '$' {
				b.WriteByte(s[i])
				continue
			}
			name, n := "", 0
			if i+1 < len(s) && s[i+1] == '{' {
				if end := strings.IndexByte(s[i:], '}'); end > 0 {
					name, n = s[i+2:i+end], end+1
				}
			} else {
				j := i + 1
				for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
					j++
				}
				// keepalived expands a bare $NAME only before white space, ',' or
				// ')' or at the end: $VIP/24 stays as it is; ${VIP}/24 expands.
				if j == len(s) || strings.IndexByte(" \t,)", s[j]) >= 0 {
					name, n = s[i+1:j], j-i
				}
			}
			val, ok := lx.defs[name]
			if !ok {
				b.WriteByte(s[i])
				continue
			}
			if strings.Contains(val, "\n") && strings.TrimSpace(s) != s[i:i+n] {
				lx.diags.errorf(pos, "multi-line definition $%s must stand alone on its line", name)
			}
			b.WriteString(val)
			i += n - 1
			changed = true
		}
		s = b.String()
		if !changed {
			return s
		}
	}
	lx.diags.errorf(pos, "definitions expand without end")
	return s
}

// splitWords splits a line into words like keepalived: white space separates, a
// double-quoted string is one word without its quotes.
func splitWords(s string) ([]string, error) {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t\f\v")
		if s == "" {
			return words, nil
		}
		if s[0] == '"' {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return words, fmt.Errorf("unmatched quote in %q", s)
			}
			words = append(words, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexAny(s, " \t\f\v\"")
		if end < 0 {
			end = len(s)
		}
		words = append(words, s[:end])
		s = s[end:]
	}
}
