package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
)

// flagSet is a subcommand's flags with its help text. Go's flag package
// writes flags as -name; peerload's help and errors write them the GNU way
// (--name, and -n for one letter), as the README does, so the flag package
// never prints anything itself: parse errors are returned and rewritten,
// and printUsage formats the flags.
type flagSet struct {
	*flag.FlagSet
	c        *cli
	synopsis string
	help     string
	// choices are the values a flag takes, for completion; "" holds the
	// positional arguments'.
	choices map[string][]string
	// aliases maps a one-letter flag to the long flag it stands for.
	aliases map[string]string
	// checks run after a successful parse: values the flag package cannot
	// judge alone (an address that must have a port).
	checks []func() error
}

func (c *cli) newFlagSet(name, synopsis, help string) *flagSet {
	fs := flag.NewFlagSet("peerload "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, c: c, synopsis: synopsis, help: help, choices: map[string][]string{}, aliases: map[string]string{}}
}

// alias makes the one-letter flag short another name of the flag long
// (-r for --random); help shows them on one line.
func (f *flagSet) alias(short, long string) {
	fl := f.Lookup(long)
	f.Var(fl.Value, short, fl.Usage)
	f.aliases[short] = long
}

// shortFor is the one-letter alias of a long flag, "" when it has none.
func (f *flagSet) shortFor(long string) string {
	for s, l := range f.aliases {
		if l == long {
			return s
		}
	}
	return ""
}

// command is the subcommand's name.
func (f *flagSet) command() string { return strings.TrimPrefix(f.Name(), "peerload ") }

// choose records the values flag name takes (completion offers them).
func (f *flagSet) choose(name string, values ...string) { f.choices[name] = values }

// dashed writes a flag name as the user types it: -n, --name.
func dashed(name string) string {
	if len([]rune(name)) == 1 {
		return "-" + name
	}
	return "--" + name
}

// isBoolFlag reports whether fl takes no value.
func isBoolFlag(fl *flag.Flag) bool {
	b, ok := fl.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// valueName is the word a flag's help puts after it: the back-quoted word
// of its usage, "" for a boolean.
func valueName(fl *flag.Flag) string {
	if isBoolFlag(fl) {
		return ""
	}
	name, _ := flag.UnquoteUsage(fl)
	return name
}

// usageColumn is where flag descriptions start; helpWidth is where they wrap.
const (
	usageColumn = 26
	helpWidth   = 80
)

func (f *flagSet) printUsage() {
	w := f.c.stdout
	fmt.Fprintf(w, "Usage: %s", f.Name())
	if f.synopsis != "" {
		fmt.Fprintf(w, " %s", f.synopsis)
	}
	fmt.Fprintf(w, "\n\n%s\n", strings.TrimSpace(f.help))
	var lines []string
	f.VisitAll(func(fl *flag.Flag) {
		if f.aliases[fl.Name] != "" {
			return // shown with its long name
		}
		head := "  " + dashed(fl.Name)
		if short := f.shortFor(fl.Name); short != "" {
			head = "  -" + short + ", " + dashed(fl.Name)
		}
		if v := valueName(fl); v != "" {
			head += " " + v
		}
		_, usage := flag.UnquoteUsage(fl)
		if def := defaultText(fl); def != "" && !strings.Contains(usage, "default") {
			usage += " (default " + def + ")"
		}
		lines = append(lines, formatFlagLine(head, usage))
	})
	if len(lines) > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", strings.Join(lines, ""))
	}
}

// formatFlagLine puts usage beside head (below it when head is too wide),
// wrapped at helpWidth.
func formatFlagLine(head, usage string) string {
	var b strings.Builder
	b.WriteString(head)
	col := len(head)
	if col+2 > usageColumn {
		b.WriteString("\n")
		col = 0
	}
	b.WriteString(strings.Repeat(" ", usageColumn-col))
	col = usageColumn
	for i, word := range strings.Fields(usage) {
		if i > 0 && col+1+len(word) > helpWidth {
			b.WriteString("\n" + strings.Repeat(" ", usageColumn))
			col = usageColumn
		} else if i > 0 {
			b.WriteString(" ")
			col++
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteString("\n")
	return b.String()
}

// defaultText is a flag's default as help shows it, "" when it is the zero
// value.
func defaultText(fl *flag.Flag) string {
	switch fl.DefValue {
	case "", "0", "0s", "false":
		return ""
	}
	return fl.DefValue
}

// parse parses args, allowing flags and positional arguments to mix
// (`hostfile out.txt -n 4`). Everything after "--" is positional. A value
// glued to a one-letter flag (-n4) and bundled one-letter switches (-vr)
// are split first.
func (f *flagSet) parse(args []string) ([]string, error) {
	if f.c.describe {
		f.c.described = f
		return nil, errDescribe
	}
	args = f.splitShort(args)
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				f.printUsage()
				return nil, errHelp
			}
			return nil, f.parseError(err)
		}
		rest := f.Args()
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), f.check()
		}
		if len(rest) == 0 {
			return pos, f.check()
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// check runs the checks of the parsed values; the first failure is the
// error.
func (f *flagSet) check() error {
	for _, c := range f.checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

// splitShort rewrites -n4 as -n 4 and -vr as -v -r, up to "--".
func (f *flagSet) splitShort(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			out = append(out, a)
			continue
		}
		fl := f.Lookup(a[1:2])
		switch {
		case fl == nil:
			out = append(out, a)
		case !isBoolFlag(fl):
			if a[2] == '=' {
				out = append(out, a)
			} else {
				out = append(out, a[:2], a[2:])
			}
		case f.allSwitches(a[1:]):
			for _, r := range a[1:] {
				out = append(out, "-"+string(r))
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// allSwitches reports whether every letter of s is a one-letter boolean flag.
func (f *flagSet) allSwitches(s string) bool {
	for _, r := range s {
		fl := f.Lookup(string(r))
		if fl == nil || !isBoolFlag(fl) {
			return false
		}
	}
	return true
}

// The flag package's own error messages, rewritten by parseError.
var (
	errUndefinedRE = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	errNeedsArgRE  = regexp.MustCompile(`^flag needs an argument: -+(.*)$`)
	errInvalidRE   = regexp.MustCompile(`^invalid (?:boolean )?value "(.*)" for (?:flag )?-+([^:]*): `)
)

// parseError turns a flag package error into one line in the GNU style,
// naming the flag as the user typed it.
func (f *flagSet) parseError(err error) error {
	msg := err.Error()
	if m := errUndefinedRE.FindStringSubmatch(msg); m != nil {
		return &usageError{f.unknownFlag(m[1])}
	}
	if m := errNeedsArgRE.FindStringSubmatch(msg); m != nil {
		what := "a value"
		if fl := f.Lookup(m[1]); fl != nil && valueName(fl) != "" {
			what = valueName(fl)
		}
		return &usageError{fmt.Errorf("%s needs %s", dashed(m[1]), what)}
	}
	if m := errInvalidRE.FindStringSubmatch(msg); m != nil {
		return &flagError{Flag: m[2], Value: m[1], Err: errors.New(expected(f.Lookup(m[2])))}
	}
	return &usageError{err}
}

// unknownFlag says a flag does not exist; what ssh(1) would understand is
// pointed to `--` (`peerload ssh -l alice`).
func (f *flagSet) unknownFlag(name string) error {
	if f.command() == "ssh" && len(name) == 1 && unicode.IsLetter(rune(name[0])) {
		return fmt.Errorf("unknown flag -%s: options for ssh itself go after --, as in `peerload ssh -- -%s ...`", name, name)
	}
	return fmt.Errorf("unknown flag %s (see `%s --help`)", dashed(name), f.Name())
}

// expected says what a flag's value must look like.
func expected(fl *flag.Flag) string {
	if fl == nil {
		return "invalid value"
	}
	g, ok := fl.Value.(flag.Getter)
	if !ok {
		return "invalid value"
	}
	switch g.Get().(type) {
	case bool:
		return "want true or false"
	case time.Duration:
		return "not a duration (like 500ms, 2s or 1m30s)"
	case int, int64, uint, uint64:
		return "not a whole number"
	case float64:
		return "not a number"
	}
	return "invalid value"
}
