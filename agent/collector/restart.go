package collector

import (
	"slices"
)

// Differences names every setting in which a and b differ, in the order
// of Spec's fields: bind, name, join, join file, keyring, label, allow,
// stale, profile, roles (roles compared as a set).
func Differences(a, b Spec) []string {
	var d []string
	add := func(differ bool, setting string) {
		if differ {
			d = append(d, setting)
		}
	}
	add(a.Bind != b.Bind, "bind")
	add(a.Name != b.Name, "name")
	add(!slices.Equal(a.Join, b.Join), "join")
	add(a.JoinFile != b.JoinFile, "join file")
	add(a.Keyring != b.Keyring, "keyring")
	add(a.Label != b.Label, "label")
	add(!slices.Equal(a.Allow, b.Allow), "allow")
	add(a.Stale != b.Stale, "stale")
	add(a.Profile != b.Profile, "profile")
	add(!slices.Equal(sorted(a.Roles), sorted(b.Roles)), "roles")
	return d
}

// RestartSettings is the one rule of which settings a running member
// cannot take: it names the settings that differ between have (what the
// member runs with) and want and that need a new agent. Those are its
// bind address (another socket: another member), its name, label, allow
// list, stale cap and timing profile (fixed in memberlist's or the
// agent's configuration), its updater roles (in the node meta), and
// whether gossip is encrypted at all. Everything else a running member
// adopts in place (see Handle.Start): the join list and join file
// (members new to them are contacted) and the keyring file (read again:
// keys added, removed or rotated).
func RestartSettings(have, want Spec) []string {
	var changed []string
	for _, s := range Differences(have, want) {
		switch s {
		case "join", "join file":
		case "keyring":
			if (have.Keyring == "") != (want.Keyring == "") {
				changed = append(changed, "keyring (encryption on/off)")
			}
		default:
			changed = append(changed, s)
		}
	}
	return changed
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
