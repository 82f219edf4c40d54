package peerload

// Ready implements the ready plugin's Readiness interface: true once the
// member has joined the cluster and holds at least one node's report, so
// the answers come from real data.
func (p *PeerLoad) Ready() bool {
	if !p.state.Load().ready {
		return false
	}
	if r := p.readiness.Load(); r != nil {
		return (*r).Ready()
	}
	return true
}

// readinessSource is a snapshot source that knows whether it has joined
// (*agent.Agent does).
type readinessSource interface {
	Ready() bool
}
