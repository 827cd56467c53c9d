// Command tcpcheck moves a deterministic byte stream over one TCP connection
// and prints what it saw, so an end-to-end test can prove that data crossed
// a tunnel intact.
//
//	tcpcheck serve ADDR              accept one connection, read until EOF
//	tcpcheck send ADDR BYTES SEED    send BYTES pseudo-random bytes from SEED
//
// Both print one line, "bytes=N sha256=HEX", when they finish; serve first
// prints "listening ADDR" once the socket is bound. The sender half-closes
// after the last byte and waits for the server to close, so its exit status
// says whether the server read everything. The stream for a given SEED is
// always the same (ChaCha8 keyed by SHA-256 of the seed), so the sender's
// digest is what the receiver must report.
//
// It is a test tool: it runs inside the simulator's network namespaces only
// and is built by the e2e tests.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 120*time.Second, "give up after this long")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: tcpcheck [-timeout D] serve ADDR | send ADDR BYTES SEED\n")
	}
	flag.Parse()
	args := flag.Args()
	var err error
	switch {
	case len(args) == 2 && args[0] == "serve":
		err = serve(args[1], *timeout)
	case len(args) == 4 && args[0] == "send":
		n, perr := strconv.ParseInt(args[2], 10, 64)
		if perr != nil || n < 0 {
			err = fmt.Errorf("BYTES %q: want a non-negative integer", args[2])
			break
		}
		err = send(args[1], n, args[3], *timeout)
	default:
		flag.Usage()
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "tcpcheck: %v\n", err)
		os.Exit(1)
	}
}

func serve(addr string, timeout time.Duration) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Printf("listening %s\n", ln.Addr())
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(timeout))
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	h := sha256.New()
	n, err := io.CopyBuffer(h, c, make([]byte, 256<<10))
	if err != nil {
		return fmt.Errorf("read after %d bytes: %w", n, err)
	}
	fmt.Printf("bytes=%d sha256=%s\n", n, hex.EncodeToString(h.Sum(nil)))
	return nil
}

// stream returns the deterministic byte source for seed.
func stream(seed string) *rand.ChaCha8 {
	return rand.NewChaCha8(sha256.Sum256([]byte("tcpcheck:" + seed)))
}

func send(addr string, n int64, seed string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(deadline)
	h := sha256.New()
	src := io.LimitReader(stream(seed), n)
	buf := make([]byte, 256<<10)
	var sent int64
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			if _, err := c.Write(buf[:k]); err != nil {
				return fmt.Errorf("write after %d bytes: %w", sent, err)
			}
			sent += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	// The server closes after reading EOF: wait for that, so a zero exit
	// status means every byte was read on the other side.
	if _, err := c.Read(buf[:1]); !errors.Is(err, io.EOF) {
		return fmt.Errorf("waiting for the server to finish: %v", err)
	}
	fmt.Printf("bytes=%d sha256=%s\n", sent, hex.EncodeToString(h.Sum(nil)))
	return nil
}
