// Package test holds the integration tests: they drive the built binaries
// (bin/peerload, bin/coredns, bin/caddy) and real external programs (dig,
// delv, nsupdate, named, dnsperf, chromium) over loopback or inside network
// namespaces the tests create (package lab). Run them through `make test`,
// which installs those programs, builds bin/ and sets PEERLOAD_BIN.
//
// The package has no code outside its tests; harness_test.go is the shared
// harness every test reuses.
package test
