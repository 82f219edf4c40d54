// Command mkpkg builds the peerload Debian and RPM packages from one
// nfpm configuration, packaging/nfpm.yaml, with nfpm, the Go library made
// for this: `make deb` and `make release` run it from the repository root
// after building stripped binaries. It adds what a static YAML file cannot
// say: the package version derived from `git describe`, the architecture
// of the Go build, the documentation (gzip-compressed, as Debian policy
// asks), a changelog and the licences and notices of the third-party code
// in the binaries (thirdparty.go). With SOURCE_DATE_EPOCH set every time
// stamp in the packages is that time, so one commit gives the same bytes.
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// docs are installed under /usr/share/doc/peerload, compressed.
var docs = map[string]string{
	"README.md":                "README.md.gz",
	"docs/deploying.md":        "deploying.md.gz",
	"docs/rfc2136.md":          "rfc2136.md.gz",
	"plugin/coredns/README.md": "plugin-README.md.gz",
	"zones/named.conf.example": "examples/named.conf.example.gz",
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "mkpkg:", err)
		os.Exit(1)
	}
}

// packagers are the formats mkpkg writes, by --packagers name.
var packagers = map[string]nfpm.Packager{"deb": deb.Default, "rpm": rpm.DefaultRPM}

func run(args []string) error {
	flags := flag.NewFlagSet("mkpkg", flag.ContinueOnError)
	flags.Usage = func() {
		fmt.Fprint(flags.Output(), `Usage: go run ./packaging/mkpkg [flags]

Build the peerload packages from packaging/nfpm.yaml and the binaries in
--bin-dir (run from the repository root; make deb and make release do).
Writes OUT-DIR/peerload_VERSION_ARCH.deb and the symlink
OUT-DIR/peerload.deb, and likewise the .rpm.

Flags:
`)
		flags.PrintDefaults()
	}
	config := flags.String("config", "packaging/nfpm.yaml", "nfpm configuration `FILE`")
	version := flags.String("version", "", "`git describe` output the package version is made from (required)")
	arch := flags.String("arch", envOr("GOARCH", runtime.GOARCH), "Go `GOARCH` of the binaries")
	outDir := flags.String("out-dir", "bin", "`DIR` to write the packages to")
	binDir := flags.String("bin-dir", "bin/deb", "`DIR` with the binaries to package")
	formats := flags.String("packagers", "deb", "package `FORMATS` to write, comma-separated: deb, rpm")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", flags.Arg(0))
	}
	pkgVersion, err := DebianVersion(*version)
	if err != nil {
		return fmt.Errorf("--version: %w", err)
	}
	var want []string
	for _, f := range strings.Split(*formats, ",") {
		if _, ok := packagers[f]; !ok {
			return fmt.Errorf("--packagers: unknown format %q (want deb or rpm)", f)
		}
		want = append(want, f)
	}

	cfg, err := nfpm.ParseFileWithEnvMapping(*config, func(k string) string {
		switch k {
		case "VERSION":
			return pkgVersion
		case "ARCH":
			return *arch
		case "BINDIR":
			return *binDir
		}
		return ""
	})
	if err != nil {
		return fmt.Errorf("%s: %w", *config, err)
	}

	tmp, err := os.MkdirTemp("", "mkpkg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	gen := &generated{dir: tmp, mtime: buildTime()}
	if err := gen.all(cfg.Name, pkgVersion, cfg.Maintainer, *binDir); err != nil {
		return err
	}
	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		return err
	}
	for _, format := range want {
		path, err := writePackage(cfg, format, gen, *outDir)
		if err != nil {
			return fmt.Errorf("%s: %w", format, err)
		}
		fmt.Println(path)
	}
	return nil
}

// writePackage writes one package and its symlink OUT-DIR/NAME.FORMAT.
func writePackage(cfg nfpm.Config, format string, gen *generated, outDir string) (string, error) {
	info, err := cfg.Get(format)
	if err != nil {
		return "", err
	}
	info = nfpm.WithDefaults(info)
	// SOURCE_DATE_EPOCH (or now) for every time stamp: the archives'
	// headers and every file, whatever its time on disk.
	info.MTime = gen.mtime
	for _, c := range gen.out {
		cc := *c
		fi := *c.FileInfo
		cc.FileInfo = &fi
		info.Contents = append(info.Contents, &cc)
	}
	if err := nfpm.Validate(info); err != nil {
		return "", err
	}
	p := packagers[format]
	name := p.ConventionalFileName(info)
	path := filepath.Join(outDir, name)
	var buf bytes.Buffer
	if err := p.Package(info, &buf); err != nil {
		return "", fmt.Errorf("package: %w", err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	link := filepath.Join(outDir, info.Name+"."+format)
	if err := os.Remove(link); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return path, os.Symlink(name, link)
}

// all generates what every package holds besides nfpm.yaml's contents:
// the docs and changelog, the man pages and the third-party notices.
func (g *generated) all(pkg, version, maintainer, binDir string) error {
	if err := g.docsAndChangelog(pkg, version, maintainer); err != nil {
		return err
	}
	if err := g.manPage(filepath.Join(binDir, "peerload"), "send lab users to the least-loaded machine that is up",
		".I command\n[\\fIflags\\fR] [\\fIargs\\fR]\n", ".PP\nEvery command has \\fB--help\\fR.\n"+manFiles); err != nil {
		return err
	}
	if err := g.manPage(filepath.Join(binDir, "peerload-plot"), "draw the plots of peerload simulate \\-\\-plot",
		".I DIR\n", ".SH SEE ALSO\n.BR peerload (1)\n"); err != nil {
		return err
	}
	goroot, err := goEnv("GOROOT")
	if err != nil {
		return err
	}
	modCache, err := goEnv("GOMODCACHE")
	if err != nil {
		return err
	}
	notices, err := thirdPartyNotices(map[string]string{
		filepath.Join(binDir, "peerload"):      "/usr/bin/peerload",
		filepath.Join(binDir, "peerload-plot"): "/usr/bin/peerload-plot",
		filepath.Join(binDir, "coredns"):       "/usr/lib/peerload/coredns",
	}, goroot, modCache)
	if err != nil {
		return err
	}
	return g.add("/usr/share/doc/"+pkg+"/third-party-licenses.gz", notices)
}

// describeRE matches `git describe --tags --always --dirty` output:
// a tag with optional commits-since and hash, or a bare hash.
// A bare abbreviated hash is tried first: it may start with a digit.
var describeRE = regexp.MustCompile(`^(?:([0-9a-f]{7,40})|v?(\d[0-9A-Za-z.+~]*?)(?:-(\d+)-g([0-9a-f]+))?)(-dirty)?$`)

// DebianVersion turns `git describe` output into a native Debian version
// that sorts the way the commits do: v1.2.0 is 1.2.0, three commits later
// 1.2.0+git3.gabc1234, and a tree without tags 0~git.abc1234 (before any
// release). A dirty tree adds +dirty.
func DebianVersion(describe string) (string, error) {
	m := describeRE.FindStringSubmatch(strings.TrimSpace(describe))
	if m == nil {
		return "", fmt.Errorf("%q is not `git describe --tags --always --dirty` output", describe)
	}
	var v string
	switch {
	case m[1] != "":
		v = "0~git." + m[1]
	case m[3] != "":
		v = m[2] + "+git" + m[3] + ".g" + m[4]
	default:
		v = m[2]
	}
	if m[5] != "" {
		v += "+dirty"
	}
	return v, nil
}

// buildTime is SOURCE_DATE_EPOCH when set (reproducible builds), else now.
func buildTime() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC()
}

// generated collects files made at build time, gzip-compressed (Debian
// policy for docs, changelogs and man pages), as package contents.
type generated struct {
	dir   string
	mtime time.Time
	out   files.Contents
}

// add compresses data into the temporary dir and packages it as dst.
func (g *generated) add(dst string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.ModTime = g.mtime
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	src := filepath.Join(g.dir, strings.ReplaceAll(strings.TrimPrefix(dst, "/"), "/", "_"))
	if err := os.WriteFile(src, buf.Bytes(), 0o644); err != nil {
		return err
	}
	g.out = append(g.out, &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	return nil
}

// docsAndChangelog adds the documentation and a one-entry Debian changelog
// (lintian wants one; the history is git's).
func (g *generated) docsAndChangelog(pkg, version, maintainer string) error {
	doc := "/usr/share/doc/" + pkg + "/"
	for src, dst := range docs {
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := g.add(doc+dst, data); err != nil {
			return err
		}
	}
	changelog := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from git by make deb.\n\n -- %s  %s\n",
		pkg, version, maintainer, g.mtime.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	return g.add(doc+"changelog.gz", []byte(changelog))
}

// manPage makes NAME(1) of a packaged binary from `NAME --help`, so the
// page says what the binary it ships with does: summary is the line of
// NAME, synopsis what follows the name (roff), tail the sections after
// DESCRIPTION.
func (g *generated) manPage(binary, summary, synopsis, tail string) error {
	help, err := exec.Command(binary, "--help").Output()
	if err != nil {
		return fmt.Errorf("%s --help: %w", binary, err)
	}
	name := filepath.Base(binary)
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 1 %q peerload \"peerload manual\"\n", strings.ToUpper(name), g.mtime.Format("2006-01-02"))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", name, summary)
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n%s", name, synopsis)
	b.WriteString(".SH DESCRIPTION\n.nf\n")
	for line := range strings.Lines(string(help)) {
		line = strings.ReplaceAll(line, `\`, `\e`)
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			line = `\&` + line
		}
		b.WriteString(line)
	}
	b.WriteString(".fi\n")
	b.WriteString(tail)
	return g.add("/usr/share/man/man1/"+name+".1.gz", []byte(b.String()))
}

// manFiles is the FILES and SEE ALSO part of peerload(1).
const manFiles = `.SH FILES
.TP
.I /etc/peerload/keyring
gossip encryption keyring (root:peerload 0640); made by \fBpeerload keygen\fR
.TP
.I /etc/peerload/machines.txt
members to join, one host:port a line
.TP
.I /etc/peerload/agent.env, nsupdate.env, coredns.env
settings of peerload-agent.service, peerload-nsupdate.service and peerload-coredns.service
.TP
.I /etc/peerload/Corefile
configuration of CoreDNS with the peerload plugin
.TP
.I /var/lib/peerload
the agent's drain flag and report generation
.SH SEE ALSO
.BR ssh (1),
.BR systemd.exec (5);
/usr/share/doc/peerload/README.md.gz and deploying.md.gz
`

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
