package cluster

// StartAgain starts a broker that has exited (after Stop or Kill) again on
// the same address and data dir, and waits until it answers. Tests use it to
// change the data dir while no broker runs, for example to damage a segment
// file. It fails the test if the broker is still running.
func (b *Broker) StartAgain() {
	b.t.Helper()
	if !b.Exited() {
		b.t.Fatalf("broker %s: StartAgain while it is still running", b.Addr)
	}
	b.start()
}
