// Package packaging holds the Debian and RPM packages of peerload:
// nfpm.yaml, the hardened systemd units, the files under /etc/peerload, the
// sysusers.d entry and the maintainer scripts. `make deb` builds the .deb
// with ./mkpkg, `make release` the .deb and the .rpm of a release; the
// tests here (`make test-deb`) check the built package the way an admin
// meets it: its contents and licences, lintian, and an install into a
// throwaway copy of this machine booted with systemd-nspawn, where the
// units are verified, scored and run; and that two builds of one commit
// are the same bytes. There is no Go API.
package packaging
