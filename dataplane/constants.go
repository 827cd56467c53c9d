package dataplane

import "time"

// Protocol constants.
const (
	// NATTPort is the IKE/ESP-in-UDP port (RFC 3948, Section 2; RFC 7296,
	// Section 2.23); IKEPort is plain IKE.
	NATTPort = 4500
	IKEPort  = 500
	// nonESPMarkerLen is the four zero octets that precede IKE messages on
	// port 4500 (RFC 3948, Section 2.2).
	nonESPMarkerLen = 4
	// natKeepalive is the one-octet NAT-keepalive payload (RFC 3948,
	// Section 2.3).
	natKeepalive = 0xff
	// espHeaderLen is SPI + sequence number (RFC 4303, Section 2).
	espHeaderLen = 8
	// DefaultNATKeepalive is the interval of RFC 3948 keepalives when
	// TunnelConfig.NATKeepalive is zero (strongSwan and AWS use 20 s).
	DefaultNATKeepalive = 20 * time.Second
)

// Implementation constants.
const (
	// batchSize is the most packets read or written per system call, and
	// the most packets in one pipeline batch.
	batchSize = 128
	// bufSize is the size of a packet buffer: a full 64 KiB datagram or
	// TUN GRO superpacket plus headroom.
	bufSize = 65536 + 128
	// txBufSize is the size of a TUN reader's buffer: the TUN splits GSO
	// superpackets into packets of at most DeviceMTU octets, read at
	// tunReadOffset, and sealing in place appends at most padding, the pad
	// length and next header octets and the ICV (txTrailer covers CBC's
	// 15 octets of padding and a 32-octet ICV with room to spare).
	txBufSize = tunReadOffset + DeviceMTU + txTrailer
	txTrailer = 128
	// tunReadOffset is where the TUN reader puts inner packets: room for
	// the largest ESP header + IV (8 + 16) in front, so Seal works in
	// place.
	tunReadOffset = 64
	// rxOffset is where received datagrams start. With AES-GCM and
	// ChaCha20-Poly1305 (8-octet IV) the inner packet then starts exactly
	// at tunWriteOffset, so it is written to the TUN without moving it.
	rxOffset       = 16
	tunWriteOffset = rxOffset + espHeaderLen + 8
	// Queue depths, in batches. Each batch is in its parallel queue and
	// its tunnel's sequential queue at once; the sequential depth bounds
	// the packets in flight per tunnel and direction.
	parallelQueueLen   = 256
	sequentialQueueLen = 16
	// maxFreeBuffers caps the buffers kept for reuse; more may exist
	// while traffic peaks and are garbage collected afterwards.
	maxFreeBuffers = 1024
	// ikeReadBatch is the batch of the port-500 socket, which carries
	// only IKE.
	ikeReadBatch = 8
	// keepaliveTick is the shortest wait between NAT-keepalive checks.
	keepaliveTick = time.Second
)
