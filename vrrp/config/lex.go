package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
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

// Bounds on what a configuration can make the reader do, so that check and run
// finish on any input: a file that includes itself, definitions that expand into
// each other or an include of /dev/zero end with an error naming the bound
// instead of eating the machine. Each is far above what a real keepalived.conf
// needs (the largest seen are a few thousand lines in tens of files).
const (
	maxIncludeDepth  = 16       // files open at once: the main file and 15 nested includes
	maxFiles         = 10000    // files read in all, the same file counted each time
	maxTotalBytes    = 16 << 20 // bytes read from files plus bytes added by definitions
	maxLines         = 1 << 18  // logical lines
	maxExpansion     = 1 << 20  // one line after its definitions are expanded
	maxExpandRounds  = 16       // definitions used inside definitions, nested
	maxBraceAlts     = 1024     // patterns an include's {a,b} alternatives expand to
	maxPatternLen    = 4096     // an include's pattern: PATH_MAX
	maxPatternBraces = 64
	maxGlobEntries   = 100000 // directory entries include patterns look at, in all
)

type lexer struct {
	fsys     fs.FS // nil: the real file system
	configID string
	defs     map[string]string
	lines    []line
	diags    *diags
	// open are the files being read, outermost first, to name an include
	// loop by its chain of files.
	open        []openFile
	files       int   // files read so far
	globEntries int   // directory entries looked at by include patterns so far
	bytes       int64 // bytes read and expanded so far
	// stop is set when a bound is reached: nothing more is read, so that one
	// error ends the reading instead of a flood of them.
	stop bool
}

// openFile is a file being read: its name as written and its identity
// (device and inode, or the cleaned path in an fs.FS) to recognise it however
// it is spelled.
type openFile struct {
	path string
	id   string
}

// fail reports an error that ends the reading.
func (lx *lexer) fail(pos Pos, format string, args ...any) {
	lx.diags.errorf(pos, format, args...)
	lx.stop = true
}

func (lx *lexer) readFile(path string, from Pos) {
	if lx.stop {
		return
	}
	if _, ok := lx.diags.fileOrder[path]; !ok {
		lx.diags.fileOrder[path] = len(lx.diags.fileOrder)
	}
	data, id, err := lx.read(path)
	if err != nil {
		if isBound(err) {
			lx.fail(from, "read %s: %v", path, err)
		} else {
			lx.diags.errorf(from, "read %s: %v", path, err)
		}
		return
	}
	for i, f := range lx.open {
		if f.id == id {
			var chain []string
			for _, g := range lx.open[i:] {
				chain = append(chain, g.path)
			}
			lx.fail(from, "include %s: include loop: %s -> %s", path, strings.Join(chain, " -> "), path)
			return
		}
	}
	lx.open = append(lx.open, openFile{path, id})
	defer func() { lx.open = lx.open[:len(lx.open)-1] }()
	text := strings.ReplaceAll(string(data), "\r\n", "\n")
	data = nil
	// Physical lines one at a time, without splitting the whole text: a file of
	// newlines alone would otherwise cost a string header per byte.
	lineNo := 0
	next := func() (string, bool) {
		if text == "" {
			return "", false
		}
		lineNo++
		s, rest, _ := strings.Cut(text, "\n")
		text = rest
		return s, true
	}
	for !lx.stop {
		phys, ok := next()
		if !ok {
			break
		}
		pos := Pos{path, lineNo}
		s := lx.decomment(phys, pos)
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
				var b strings.Builder
				for strings.HasSuffix(val, `\`) {
					nextLine, ok := next()
					if !ok {
						break
					}
					b.WriteString(strings.TrimRight(strings.TrimSuffix(val, `\`), " \t"))
					b.WriteByte('\n')
					val = lx.decomment(nextLine, Pos{path, lineNo})
				}
				b.WriteString(strings.TrimSuffix(val, `\`))
				lx.defs[name] = b.String()
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

// boundError is reading that would go past one of the reader's bounds: it
// ends the reading.
type boundError string

func (e boundError) Error() string { return string(e) }

func isBound(err error) bool {
	var b boundError
	return errors.As(err, &b)
}

// read returns the contents of the regular file at path and its identity. It
// opens before it looks, and without blocking, so that neither a FIFO (which
// would block the open or the read for ever) nor a device (/dev/zero never
// ends) nor a file swapped between a check and the open is read; and it reads
// no more than the bytes left under maxTotalBytes.
func (lx *lexer) read(path string) ([]byte, string, error) {
	if lx.files >= maxFiles {
		return nil, "", boundError(fmt.Sprintf("more than %d files read in all (includes that multiply?)", maxFiles))
	}
	lx.files++
	var (
		r    io.Reader
		id   string
		mode fs.FileMode
	)
	if lx.fsys != nil {
		name := fsName(path)
		f, err := lx.fsys.Open(name)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return nil, "", err
		}
		r, id, mode = f, name, info.Mode()
	} else {
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, "", err
		}
		defer unix.Close(fd)
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil { // what was opened, not what the path names now
			return nil, "", err
		}
		// Read with read(2) itself: an os.File would wait in Go's poller
		// when a pollable file (/proc/kmsg) has nothing to read, and hang.
		r, id, mode = fdReader(fd), fmt.Sprintf("%d:%d", st.Dev, st.Ino), fileMode(st.Mode)
	}
	if !mode.IsRegular() {
		return nil, "", fmt.Errorf("not a regular file (%s)", fileKind(mode))
	}
	left := maxTotalBytes - lx.bytes
	data, err := io.ReadAll(io.LimitReader(r, left+1))
	if err != nil {
		return nil, "", err
	}
	if int64(len(data)) > left {
		return nil, "", boundError(fmt.Sprintf("more than %d MiB read in all, definitions expanded included", maxTotalBytes>>20))
	}
	lx.bytes += int64(len(data))
	return data, id, nil
}

// fdReader reads a file descriptor opened O_NONBLOCK: a read that would block
// is an error, not a wait.
type fdReader int

func (fd fdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(fd), b)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// fileMode is the type part of a stat(2) mode as an fs.FileMode.
func fileMode(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFREG:
		return 0
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFSOCK:
		return fs.ModeSocket
	}
	return fs.ModeIrregular
}

func fileKind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}

// logical handles include, then splits a line at braces outside quotes. Include
// comes first, as in keepalived, so a pattern may hold {a,b}.
func (lx *lexer) logical(s string, pos Pos) {
	if lx.stop {
		return
	}
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
		if len(lx.lines) >= maxLines {
			lx.fail(pos, "more than %d lines in all", maxLines)
			return
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
// Directories that match are skipped, as glob with GLOB_ONLYDIR unset would
// have them read as empty by keepalived.
func (lx *lexer) include(pattern string, pos Pos) {
	if len(lx.open) >= maxIncludeDepth {
		var chain []string
		for _, f := range lx.open {
			chain = append(chain, f.path)
		}
		lx.fail(pos, "include %s: includes nested more than %d deep: %s", pattern, maxIncludeDepth-1, strings.Join(chain, " -> "))
		return
	}
	// Each {a,b} costs a copy of the pattern: bound both, far above any path.
	if len(pattern) > maxPatternLen || strings.Count(pattern, "{") > maxPatternBraces {
		lx.fail(pos, "include: a pattern is at most %d bytes with %d '{'", maxPatternLen, maxPatternBraces)
		return
	}
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(pos.File), pattern)
	}
	alts, ok := expandBraces(pattern, maxBraceAlts)
	if !ok {
		lx.fail(pos, "include %s: {a,b} alternatives expand to more than %d patterns", pattern, maxBraceAlts)
		return
	}
	var matches []string
	for _, p := range alts {
		m, err := lx.glob(p)
		if isBound(err) {
			lx.fail(pos, "include %s: %v", pattern, err)
			return
		}
		if err != nil {
			lx.diags.errorf(pos, "include %s: %v", pattern, err)
			return
		}
		matches = append(matches, m...)
	}
	sort.Strings(matches)
	n := 0
	for _, m := range matches {
		if lx.stop {
			return
		}
		if lx.isDir(m) {
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

// glob is filepath.Glob with a budget: a pattern like /sys/*/*/*/*/*/*/*/*
// (sysfs has links that loop) would otherwise walk for hours. It looks at no
// more than maxGlobEntries directory entries in all, and opens only
// directories, without blocking.
func (lx *lexer) glob(pattern string) ([]string, error) {
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, err
	}
	if !strings.ContainsAny(pattern, `*?[\`) {
		if lx.exists(pattern) {
			return []string{pattern}, nil
		}
		return nil, nil
	}
	dir, file := filepath.Split(pattern)
	switch dir {
	case "":
		dir = "."
	case "/":
	default:
		dir = dir[:len(dir)-1]
	}
	if !strings.ContainsAny(dir, `*?[\`) {
		return lx.globDir(dir, file, nil)
	}
	if dir == pattern {
		return nil, filepath.ErrBadPattern
	}
	dirs, err := lx.glob(dir)
	if err != nil {
		return nil, err
	}
	var m []string
	for _, d := range dirs {
		if m, err = lx.globDir(d, file, m); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// globDir appends to m the names in dir that match pattern. A directory that
// cannot be read matches nothing, as in filepath.Glob.
func (lx *lexer) globDir(dir, pattern string, m []string) ([]string, error) {
	var names []string
	if lx.fsys != nil {
		entries, err := fs.ReadDir(lx.fsys, fsName(dir))
		if err != nil {
			return m, nil
		}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		lx.globEntries += len(names)
	} else {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err != nil {
			return m, nil
		}
		f := os.NewFile(uintptr(fd), dir)
		defer f.Close()
		for lx.globEntries <= maxGlobEntries {
			batch, err := f.Readdirnames(1024)
			names = append(names, batch...)
			lx.globEntries += len(batch)
			if err != nil {
				break
			}
		}
	}
	if lx.globEntries > maxGlobEntries {
		return nil, boundError(fmt.Sprintf("patterns look at more than %d directory entries in all", maxGlobEntries))
	}
	sort.Strings(names)
	for _, n := range names {
		if ok, _ := filepath.Match(pattern, n); ok {
			m = append(m, filepath.Join(dir, n))
		}
	}
	return m, nil
}

func (lx *lexer) exists(path string) bool {
	if lx.fsys != nil {
		_, err := fs.Stat(lx.fsys, fsName(path))
		return err == nil
	}
	var st unix.Stat_t
	return unix.Lstat(path, &st) == nil
}

// fsName is path as an fs.FS names it: slashes, no leading one, "." for the
// root.
func fsName(path string) string {
	name := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(path)), "/")
	if name == "" {
		return "."
	}
	return name
}

// isDir says whether path is a directory, to skip. Lstat never blocks or opens
// anything; whatever is not a directory is left to read, which refuses all but
// regular files.
func (lx *lexer) isDir(path string) bool {
	var info fs.FileInfo
	var err error
	if lx.fsys == nil {
		info, err = os.Stat(path)
	} else {
		info, err = fs.Stat(lx.fsys, fsName(path))
	}
	return err == nil && info.IsDir()
}

// expandBraces expands {a,b} alternatives as GLOB_BRACE does, into at most max
// patterns; ok is false when there would be more.
func expandBraces(p string, max int) (out []string, ok bool) {
	if max < 1 {
		return nil, false
	}
	open := strings.IndexByte(p, '{')
	if open < 0 {
		return []string{p}, true
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
				for _, a := range alts {
					more, ok := expandBraces(p[:open]+a+p[i+1:], max-len(out))
					if !ok {
						return nil, false
					}
					out = append(out, more...)
				}
				return out, true
			}
		}
	}
	return []string{p}, true
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
// definition is only expanded where it stands alone on its line. Definitions
// may use definitions, to maxExpandRounds levels; a line grows to maxExpansion
// bytes at most, and what expansion adds counts towards maxTotalBytes, so that
// definitions which double each other (or themselves) end in an error.
func (lx *lexer) substitute(s string, pos Pos) string {
	if !strings.Contains(s, "$") || len(lx.defs) == 0 {
		return s
	}
	in := len(s)
	multiLineErr := false
	for range maxExpandRounds {
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
			if strings.Contains(val, "\n") && strings.TrimSpace(s) != s[i:i+n] && !multiLineErr {
				lx.diags.errorf(pos, "multi-line definition $%s must stand alone on its line", name)
				multiLineErr = true
			}
			if b.Len()+len(val)+len(s)-i > maxExpansion {
				lx.fail(pos, "definitions expand this line to more than %d MiB (definitions that use each other?)", maxExpansion>>20)
				return ""
			}
			b.WriteString(val)
			i += n - 1
			changed = true
		}
		s = b.String()
		if !changed {
			if lx.bytes += int64(len(s) - in); lx.bytes > maxTotalBytes {
				lx.fail(pos, "more than %d MiB read in all, definitions expanded included", maxTotalBytes>>20)
				return ""
			}
			return s
		}
	}
	lx.diags.errorf(pos, "definitions nested more than %d deep (definitions that use each other?)", maxExpandRounds)
	return ""
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
