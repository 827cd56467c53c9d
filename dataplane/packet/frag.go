package packet

import (
	"encoding/binary"
	"errors"
)

// IPv4 fragmentation (RFC 791, Section 2.3 "Fragmentation" and Section 3.2
// "Fragmentation procedure").
//
// The dataplane splits an inner IPv4 packet that is larger than the tunnel
// MTU into fragments before encryption, as AWS advises, and encrypts each
// fragment as its own ESP packet. IPv4FragmentCount tells how many buffers
// are needed and FragmentIPv4 writes one fragment at a time into a buffer of
// the caller's, so nothing allocates.

// IPv4 header fields.
const (
	ipv4FlagDF      = 0x4000 // Don't Fragment, in the flags/offset word
	ipv4FlagMF      = 0x2000 // More Fragments
	ipv4OffsetMask  = 0x1fff // fragment offset in 8-octet units
	ipv4MaxHeader   = 60
	optEnd          = 0    // End of Option List (RFC 791, Section 3.1)
	optNOP          = 1    // No Operation
	optCopied       = 0x80 // the option's copied flag: keep it in every fragment
	minFragmentData = 8    // every fragment but the last carries a multiple of 8 octets
)

// Errors of the fragmentation functions.
var (
	ErrDF            = errors.New("packet: IPv4 packet has DF set and must not be fragmented (clear DF first)")
	ErrFragmentMTU   = errors.New("packet: MTU too small to fragment this IPv4 packet (RFC 791 needs room for the header and 8 data octets)")
	ErrOptions       = errors.New("packet: malformed IPv4 options")
	ErrNotIPv4       = errors.New("packet: not an IPv4 packet")
	ErrFragmentIndex = errors.New("packet: fragment index out of range")
	ErrShortBuffer   = errors.New("packet: destination buffer too short for the fragment")
)

// ipv4Frag is what the fragmentation functions need to know of a packet.
type ipv4Frag struct {
	hlen      int // header length of the packet and of its first fragment
	restHlen  int // header length of the other fragments (copied options only)
	dataLen   int // octets after the header
	firstData int // data octets in the first fragment
	restData  int // data octets in each further fragment (the last may carry less)
	count     int
	offset    int  // the packet's own fragment offset, in octets
	mf        bool // the packet's own MF flag (it may itself be a fragment)
}

func planIPv4(pkt []byte, mtu int) (ipv4Frag, error) {
	var f ipv4Frag
	if len(pkt) < IPv4HeaderLen || pkt[0]>>4 != 4 {
		return f, ErrNotIPv4
	}
	f.hlen = int(pkt[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:4]))
	if f.hlen < IPv4HeaderLen || total < f.hlen {
		return f, ErrHeader
	}
	if total > len(pkt) {
		return f, ErrTruncated
	}
	f.dataLen = total - f.hlen
	if total <= mtu {
		f.count = 1
		f.firstData = f.dataLen
		f.restHlen = f.hlen
		return f, nil
	}
	word := binary.BigEndian.Uint16(pkt[6:8])
	if word&ipv4FlagDF != 0 {
		return f, ErrDF
	}
	f.offset = int(word&ipv4OffsetMask) * 8
	f.mf = word&ipv4FlagMF != 0
	opts, err := copiedOptionsLen(pkt[IPv4HeaderLen:f.hlen])
	if err != nil {
		return f, err
	}
	f.restHlen = IPv4HeaderLen + (opts+3)&^3
	// RFC 791, Section 3.2: the number of data octets of every fragment but
	// the last is a multiple of 8 (NFB, the number of fragment blocks).
	f.firstData = (mtu - f.hlen) &^ 7
	f.restData = (mtu - f.restHlen) &^ 7
	if f.firstData < minFragmentData || f.restData < minFragmentData {
		return f, ErrFragmentMTU
	}
	f.count = 1 + (f.dataLen-f.firstData+f.restData-1)/f.restData
	if f.offset+f.dataLen > 0xffff {
		return f, ErrHeader // offsets would not fit the 13-bit field
	}
	return f, nil
}

// copiedOptionsLen returns the length of the options whose copied flag is
// set (RFC 791, Section 3.1: they go into every fragment; the others only
// into the first).
func copiedOptionsLen(opts []byte) (int, error) {
	n := 0
	for i := 0; i < len(opts); {
		switch typ := opts[i]; typ {
		case optEnd:
			return n, nil
		case optNOP:
			i++
			continue
		default:
			if i+1 >= len(opts) {
				return 0, ErrOptions
			}
			l := int(opts[i+1])
			if l < 2 || i+l > len(opts) {
				return 0, ErrOptions
			}
			if typ&optCopied != 0 {
				n += l
			}
			i += l
		}
	}
	return n, nil
}

// IPv4FragmentCount returns how many fragments of at most mtu octets
// FragmentIPv4 makes of the IPv4 packet pkt: 1 when it fits. It fails when
// the packet is malformed, larger than mtu with DF set (ErrDF), or mtu
// leaves no room for 8 data octets after the headers (ErrFragmentMTU).
func IPv4FragmentCount(pkt []byte, mtu int) (int, error) {
	f, err := planIPv4(pkt, mtu)
	return f.count, err
}

// FragmentIPv4 writes fragment i (0-based, of IPv4FragmentCount(pkt, mtu))
// of the IPv4 packet pkt into dst and returns its length (RFC 791, Section
// 3.2). All fragments keep the packet's Identification, TOS, TTL, protocol
// and addresses. The first carries the whole original header with its
// options; the others only the options with the copied flag set, padded
// with End of Option List to a multiple of 4 octets. Fragment offsets are
// in 8-octet units and relative to the packet's own offset; every fragment
// but the last has MF set, the last has the packet's MF (so fragments of
// fragments work). Each fragment gets its header checksum.
//
// dst may be pkt itself for i == 0 (the first fragment is then made in
// place), but only after every other fragment has been written: they are
// read from the unmodified packet. A packet that fits (count 1) is
// written unchanged.
func FragmentIPv4(dst, pkt []byte, mtu, i int) (int, error) {
	f, err := planIPv4(pkt, mtu)
	if err != nil {
		return 0, err
	}
	if i < 0 || i >= f.count {
		return 0, ErrFragmentIndex
	}
	if f.count == 1 {
		n := f.hlen + f.dataLen
		if len(dst) < n {
			return 0, ErrShortBuffer
		}
		copy(dst, pkt[:n])
		return n, nil
	}
	hlen, start, data := f.hlen, 0, f.firstData
	if i > 0 {
		hlen = f.restHlen
		start = f.firstData + (i-1)*f.restData
		data = min(f.restData, f.dataLen-start)
	}
	n := hlen + data
	if len(dst) < n {
		return 0, ErrShortBuffer
	}
	// Data first: for i == 0 in place it does not move, and the header
	// below is rebuilt from the fields read before it is overwritten.
	copy(dst[hlen:n], pkt[f.hlen+start:f.hlen+start+data])
	if i == 0 {
		copy(dst[:hlen], pkt[:hlen])
	} else {
		copy(dst[:IPv4HeaderLen], pkt[:IPv4HeaderLen])
		o := IPv4HeaderLen
		opts := pkt[IPv4HeaderLen:f.hlen]
	copyOpts:
		for j := 0; j < len(opts); {
			switch typ := opts[j]; typ {
			case optEnd:
				break copyOpts
			case optNOP:
				j++
			default:
				l := int(opts[j+1]) // validated by planIPv4
				if typ&optCopied != 0 {
					o += copy(dst[o:], opts[j:j+l])
				}
				j += l
			}
		}
		clear(dst[o:hlen]) // End of Option List padding
		dst[0] = 0x40 | byte(hlen/4)
	}
	binary.BigEndian.PutUint16(dst[2:4], uint16(n))
	word := uint16((f.offset + start) / 8)
	if i < f.count-1 || f.mf {
		word |= ipv4FlagMF
	}
	// Keep the reserved bit as it was; DF is clear (planIPv4 checked).
	word |= binary.BigEndian.Uint16(pkt[6:8]) &^ (ipv4FlagDF | ipv4FlagMF | ipv4OffsetMask)
	binary.BigEndian.PutUint16(dst[6:8], word)
	binary.BigEndian.PutUint16(dst[10:12], 0)
	binary.BigEndian.PutUint16(dst[10:12], ^OnesSum(0, dst[:hlen]))
	return n, nil
}

// ClearDF clears the Don't Fragment flag of the IPv4 packet pkt and sets
// its Identification to id, updating the header checksum incrementally
// (RFC 1624, Section 3). It reports whether DF was set; when it was not,
// the packet is left alone.
//
// A packet with DF set is an "atomic datagram" whose Identification need
// not be unique (RFC 6864, Section 4.1; Linux sends 0); once DF is
// cleared it may be fragmented, and the fragments of different datagrams
// must not share an Identification (Section 4.3), so the caller supplies
// a fresh one.
func ClearDF(pkt []byte, id uint16) bool {
	if len(pkt) < IPv4HeaderLen || pkt[0]>>4 != 4 {
		return false
	}
	word := binary.BigEndian.Uint16(pkt[6:8])
	if word&ipv4FlagDF == 0 {
		return false
	}
	sum := binary.BigEndian.Uint16(pkt[10:12])
	sum = csumUpdate(sum, word, word&^ipv4FlagDF)
	sum = csumUpdate(sum, binary.BigEndian.Uint16(pkt[4:6]), id)
	binary.BigEndian.PutUint16(pkt[4:6], id)
	binary.BigEndian.PutUint16(pkt[6:8], word&^ipv4FlagDF)
	binary.BigEndian.PutUint16(pkt[10:12], sum)
	return true
}

// DF reports whether pkt is an IPv4 packet with the Don't Fragment flag.
func DF(pkt []byte) bool {
	return len(pkt) >= IPv4HeaderLen && pkt[0]>>4 == 4 && pkt[6]&(ipv4FlagDF>>8) != 0
}
