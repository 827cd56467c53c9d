package dataplane

import (
	"errors"

	"github.com/cgwproject/cgw/esp"
	"github.com/cgwproject/cgw/ipsec"
)

// outboundTransform and inboundTransform are the parts of esp.Outbound and
// esp.Inbound the pipeline uses. They exist so that tests can count or
// break crypto; production always uses the esp package.
type outboundTransform interface {
	SPI() ipsec.SPI
	HeadRoom() int
	TailRoom() int
	NextSeq() (seq uint64, soft bool, err error)
	Seal(buf []byte, off, n int, seq uint64) (start, end int, err error)
}

type inboundTransform interface {
	SPI() ipsec.SPI
	Open(pkt []byte) (inner []byte, nextHdr byte, seq uint64, err error)
	Accept(seq uint64) bool
}

var (
	newOutboundTransform = func(p ipsec.SAParams) (outboundTransform, error) {
		o, err := esp.NewOutbound(p)
		if err != nil {
			return nil, err
		}
		return o, nil
	}
	newInboundTransform = func(p ipsec.SAParams) (inboundTransform, error) {
		in, err := esp.NewInbound(p)
		if err != nil {
			return nil, err
		}
		return in, nil
	}
)

// parseSPI is esp.ParseSPI: false for short packets and SPI 0.
func parseSPI(pkt []byte) (ipsec.SPI, bool) { return esp.ParseSPI(pkt) }

// dropForOpenError maps an esp per-packet error to a drop reason.
func dropForOpenError(err error) dropReason {
	switch {
	case err == esp.ErrAuth || errors.Is(err, esp.ErrAuth):
		return dropAuth
	case err == esp.ErrReplay || errors.Is(err, esp.ErrReplay):
		return dropReplay
	case err == esp.ErrPadding || errors.Is(err, esp.ErrPadding):
		return dropPadding
	case err == esp.ErrDummy || errors.Is(err, esp.ErrDummy):
		return dropDummy
	}
	return dropMalformed
}

// isSeqExhausted reports esp.ErrSeqExhausted.
func isSeqExhausted(err error) bool { return errors.Is(err, esp.ErrSeqExhausted) }
