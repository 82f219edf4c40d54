package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// parseNoArgs parses a command line that is only flags.
func (f *flagSet) parseNoArgs(args []string) error {
	rest, err := f.parse(args)
	if err != nil {
		return err
	}
	return noArgs(rest)
}

// parse parses args, allowing flags and positional arguments to mix
// (`hostfile out.txt -n 4`). Everything after "--" is positional, and so
// is "-" alone. A value glued to a one-letter flag (-n4) and bundled
// one-letter switches (-vr) are split first.
//
// The flag package only stores the definitions and values: parse reads
// the syntax (-name, --name, -name=value, -name value) and judges each
// argument itself, so every error line is peerload's own and names the
// flag, whatever the flag package's messages say.
func (f *flagSet) parse(args []string) ([]string, error) {
	if f.c.describe {
		f.c.described = f
		return nil, errDescribe
	}
	args = f.splitShort(args)
	var pos []string
	for len(args) > 0 {
		a := args[0]
		switch {
		case a == "--":
			return append(pos, args[1:]...), f.check()
		case len(a) < 2 || a[0] != '-':
			pos = append(pos, a)
			args = args[1:]
		default:
			n, err := f.parseFlag(args)
			if err != nil {
				return nil, err
			}
			args = args[n:]
		}
	}
	return pos, f.check()
}

// parseFlag sets the flag args[0] names, with its value glued on after
// "=", or in args[1] when it needs one, and returns how many arguments it
// used. --help and -h, unless the command defines them, print the usage
// and return errHelp.
func (f *flagSet) parseFlag(args []string) (int, error) {
	arg := args[0]
	dashes := "-"
	if strings.HasPrefix(arg, "--") {
		dashes = "--"
	}
	name, value, hasValue := strings.Cut(arg[len(dashes):], "=")
	if name == "" || name[0] == '-' {
		return 0, &usageError{fmt.Errorf("bad flag syntax: %s", arg)}
	}
	fl := f.Lookup(name)
	if fl == nil {
		if name == "help" || name == "h" {
			f.printUsage()
			return 0, errHelp
		}
		return 0, &usageError{f.unknownFlag(arg, dashes+name)}
	}
	used := 1
	switch {
	case hasValue:
	case isBoolFlag(fl):
		value = "true"
	case len(args) < 2:
		return 0, &usageError{fmt.Errorf("%s needs %s", dashed(name), cmp.Or(valueName(fl), "a value"))}
	default:
		value, used = args[1], 2
	}
	if err := f.Set(name, value); err != nil {
		return 0, &flagError{Flag: name, Value: value, Err: invalidValue(fl, err)}
	}
	return used, nil
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

// unknownFlag says a flag does not exist, naming it as it was typed
// (arg is the whole argument, flag its dashes and name). What ssh(1)
// would understand, one dash and a letter (-l alice, -p2222,
// -oBatchMode=yes, -4), is pointed to `--`.
func (f *flagSet) unknownFlag(arg, flag string) error {
	if f.command() == "ssh" && !strings.HasPrefix(arg, "--") && (unicode.IsLetter(rune(arg[1])) || unicode.IsDigit(rune(arg[1]))) {
		return fmt.Errorf("unknown flag %s: options for ssh itself go after --, as in `peerload ssh -- %s ...`", flag, arg)
	}
	return fmt.Errorf("unknown flag %s (see `%s --help`)", flag, f.Name())
}

// invalidValue says what fl's value must look like, judged by the type
// of the value rather than by the words of err, which is said only for a
// type peerload does not know.
func invalidValue(fl *flag.Flag, err error) error {
	if g, ok := fl.Value.(flag.Getter); ok {
		switch g.Get().(type) {
		case bool:
			return errors.New("want true or false")
		case time.Duration:
			return errors.New("not a duration (like 500ms, 2s or 1m30s)")
		case int, int64, uint, uint64:
			return errors.New("not a whole number")
		case float64:
			return errors.New("not a number")
		}
	}
	return err
}
