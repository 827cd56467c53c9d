package ike_test

import (
	"testing"

	"github.com/cgwproject/cgw/ike"
)

// Reconnect (our address went away) drops the IKE SA silently and
// negotiates a new one at once.
func TestReconnect(t *testing.T) {
	p := newPair(t, nil)
	p.net.Deliver()
	before := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if err := p.cgw.Manager.Reconnect("aws-t1", "our address 203.0.113.10 was removed"); err != nil {
		t.Fatal(err)
	}
	p.net.Deliver()
	after := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished)
	if after.SPIi == before.SPIi {
		t.Errorf("same IKE SA after Reconnect")
	}
	if err := p.cgw.Manager.RetryNow("aws-t1", "new address"); err != nil {
		t.Fatal(err)
	}
	p.net.Deliver()
	if again := wantState(t, p.cgw, ike.StateEstablished, ike.StateEstablished); again.SPIi != after.SPIi {
		t.Errorf("RetryNow replaced an established IKE SA")
	}
}
