package peerload

import (
	"net/netip"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/peerload/peerload/agent"
	"github.com/peerload/peerload/agent/collector"
	"github.com/peerload/peerload/agent/rank"
)

// UnmarshalCaddyfile sets up the upstream source from Caddyfile tokens:
//
//	dynamic peerload {
//		port <port>
//		<cluster properties>
//	}
//
// See README.md for the cluster properties (top, pool, by, fallback,
// name, bind, join, keyring, label, allow, profile, stale).
func (u *Upstreams) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return u.Cluster.unmarshal(d, func(prop string) (bool, error) {
		if prop != "port" {
			return false, nil
		}
		if u.Port != 0 {
			return true, d.Err("port given twice")
		}
		n, err := intArg(d, 1, 65535)
		u.Port = n
		return true, err
	}, func() error {
		if u.Port == 0 {
			return d.Err("port: the service port on the machines is required, e.g. 'port 8888'")
		}
		return nil
	})
}

// UnmarshalCaddyfile sets up the selection policy from Caddyfile tokens:
//
//	lb_policy peerload {
//		<cluster properties>
//	}
//
// See README.md for the cluster properties.
func (s *Selection) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return s.Cluster.unmarshal(d, nil, nil)
}

// unmarshal parses a module's block: the module name without arguments,
// then one property a line. more parses the module's own properties
// (reporting whether prop is one), done checks the module's own rules at
// the end. Errors name the property, the value and the line.
func (c *Cluster) unmarshal(d *caddyfile.Dispenser, more func(prop string) (bool, error), done func() error) error {
	d.Next() // the module name
	if d.NextArg() {
		return d.Errf("unexpected argument '%s': the settings go in a block", d.Val())
	}
	seen := map[string]bool{}
	for d.NextBlock(0) {
		prop := d.Val()
		if more != nil {
			if ok, err := more(prop); ok || err != nil {
				if err != nil {
					return err
				}
				continue
			}
		}
		if seen[prop] && prop != "join" && prop != "allow" {
			return d.Errf("%s given twice", prop)
		}
		seen[prop] = true
		if err := c.unmarshalProperty(d, prop); err != nil {
			return err
		}
	}
	if done != nil {
		if err := done(); err != nil {
			return err
		}
	}
	// What only the whole block shows (the agent library's rules, such as
	// the bind address inside the allow list), reported by property.
	if err := c.validate(); err != nil {
		return d.Errf("%v", err)
	}
	return nil
}

// unmarshalProperty parses one cluster property.
func (c *Cluster) unmarshalProperty(d *caddyfile.Dispenser, prop string) error {
	switch prop {
	case "top":
		n, err := intArg(d, 1, maxTop)
		c.Top = n
		return err
	case "pool":
		v, err := oneArg(d)
		if err == nil {
			if err = agent.ValidatePool(v); err != nil {
				return d.Errf("pool: %v", err)
			}
		}
		c.Pool = v
		return err
	case "by":
		v, err := oneArg(d)
		if err == nil {
			if _, err = rank.ParseBy(v); err != nil {
				return d.Errf("by: %v", err)
			}
		}
		c.By = v
		return err
	case "fallback":
		v, err := oneArg(d)
		if err == nil {
			if _, err = rank.ParseFallback(v); err != nil {
				return d.Errf("fallback: %v", err)
			}
		}
		c.Fallback = v
		return err
	case "herd":
		v, err := oneArg(d)
		if err == nil {
			if _, err = rank.ParseHerd(v); err != nil {
				return d.Errf("%v", err)
			}
		}
		c.Herd = v
		return err
	case "name":
		v, err := oneArg(d)
		if err == nil {
			if err = agent.ValidateName(v); err != nil {
				return d.Errf("name: %v", err)
			}
		}
		c.Name = v
		return err
	case "bind":
		v, err := oneArg(d)
		if err == nil {
			if _, perr := netip.ParseAddrPort(v); perr != nil {
				return d.Errf("bind: '%s' is not IP:port", v)
			}
		}
		c.Bind = v
		return err
	case "join":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("join: at least one host:port is required")
		}
		for _, a := range args {
			if err := checkJoin(a); err != nil {
				return d.Errf("join: %v", err)
			}
		}
		c.Join = append(c.Join, args...)
		return nil
	case "keyring":
		v, err := oneArg(d)
		c.Keyring = v
		return err
	case "label":
		v, err := oneArg(d)
		c.Label = v
		return err
	case "allow":
		args := d.RemainingArgs()
		if len(args) == 0 {
			return d.Errf("allow: at least one CIDR prefix is required")
		}
		for _, a := range args {
			if _, err := netip.ParsePrefix(a); err != nil {
				return d.Errf("allow: '%s' is not a CIDR prefix", a)
			}
		}
		c.Allow = append(c.Allow, args...)
		return nil
	case "profile":
		v, err := oneArg(d)
		if err == nil {
			if err = agent.DefaultConfig().SetProfile(v); err != nil {
				return d.Errf("profile: %v", err)
			}
		}
		c.Profile = v
		return err
	case "stale":
		v, err := oneArg(d)
		if err != nil {
			return err
		}
		dur, err := caddy.ParseDuration(v)
		if err != nil {
			return d.Errf("stale: invalid duration '%s'", v)
		}
		if dur <= 0 {
			return d.Errf("stale: duration must be positive, got '%s'", v)
		}
		c.Stale = caddy.Duration(dur)
		return nil
	}
	return d.Errf("unrecognized subdirective '%s'", prop)
}

// oneArg is the property's single value.
func oneArg(d *caddyfile.Dispenser) (string, error) {
	prop := d.Val()
	args := d.RemainingArgs()
	if len(args) != 1 {
		return "", d.Errf("%s: want one value, got %d", prop, len(args))
	}
	return args[0], nil
}

// intArg is the property's single value, a number from lo to hi.
func intArg(d *caddyfile.Dispenser, lo, hi int) (int, error) {
	prop := d.Val()
	v, err := oneArg(d)
	if err != nil {
		return 0, err
	}
	n, err := collector.ParseInt(prop, v, lo, hi)
	if err != nil {
		return 0, d.Errf("%v", err)
	}
	return n, nil
}

// Interface guards
var (
	_ caddyfile.Unmarshaler = (*Upstreams)(nil)
	_ caddyfile.Unmarshaler = (*Selection)(nil)
)
