package peerload

// Ready implements the ready plugin's Readiness interface: true once the
// member has joined the cluster and holds at least one node's report, so
// the answers come from real data.
func (p *PeerLoad) Ready() bool { return p.state.Load().ready }
