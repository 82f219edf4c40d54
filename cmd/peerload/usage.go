package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet is a subcommand's flags with its help text. The flag package
// holds the definitions and the values (Lookup, Set, Visit); peerload
// parses the command line itself (parse.go) and formats help itself
// (printUsage), the GNU way (--name, and -n for one letter) as the README
// writes flags, so neither depends on the flag package's wording.
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
