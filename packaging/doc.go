// Package packaging holds the Debian package of peerload: nfpm.yaml, the
// hardened systemd units, the files under /etc/peerload, the sysusers.d
// entry and the maintainer scripts. `make deb` builds the package with
// ./mkdeb; the tests here (`make test-deb`) check the built package the way
// an admin meets it: its contents, lintian, and an install into a
// throwaway copy of this machine booted with systemd-nspawn, where the
// units are verified, scored and run. There is no Go API.
package packaging
