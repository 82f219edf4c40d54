package rfc2136

import "testing"

// FuzzParseKeys: a TSIG key file is admin input in BIND's syntax; parsing
// never panics and every key it accepts has a name, an algorithm and a
// secret.
func FuzzParseKeys(f *testing.F) {
	f.Add(`key "peerload-update" { algorithm hmac-sha256; secret "lsincbpj18uJbEtsLtMSgPMdKuLP/mdB/KmdtD06994="; };`)
	f.Add("key a { algorithm hmac-md5; secret \"AAAA\"; }; # two\nkey b { secret \"AAAA\"; algorithm hmac-sha512; };")
	f.Add(`key "x" { algorithm hmac-sha256; secret "`)
	f.Add("/* comment */ // line\nkey k { };")
	f.Fuzz(func(t *testing.T, text string) {
		keys, err := ParseKeys(text)
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.Name == "" || k.Algorithm == "" || k.Secret == "" {
				t.Fatalf("accepted an incomplete key %+v from %q", k, text)
			}
		}
	})
}
