package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// peer is the credentials of the process on the other end of a connection
// (SO_PEERCRED), or the error reading them.
type peer struct {
	uid int
	pid int32
	err error
}

// withPeer stores the connecting process's credentials in the request
// context (http.Server.ConnContext).
func withPeer(ctx context.Context, c net.Conn) context.Context {
	p := peer{uid: -1}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		p.err = errors.New("not a unix socket")
		return context.WithValue(ctx, peerKey{}, p)
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		p.err = err
		return context.WithValue(ctx, peerKey{}, p)
	}
	var cred *unix.Ucred
	cerr := rc.Control(func(fd uintptr) { cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	switch {
	case cerr != nil:
		p.err = cerr
	case err != nil:
		p.err = err
	default:
		p.uid, p.pid = int(cred.Uid), cred.Pid
	}
	return context.WithValue(ctx, peerKey{}, p)
}

// authorize lets only root and the socket's owner through.
func (s *Server) authorize(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := r.Context().Value(peerKey{}).(peer)
		if !ok || p.err != nil {
			writeErr(w, http.StatusForbidden, fmt.Errorf("cannot identify the caller (SO_PEERCRED: %v)", p.err))
			return
		}
		if p.uid != 0 && p.uid != s.owner {
			if s.log != nil {
				s.log.Warn("control: request refused: caller is neither root nor the socket's owner", "uid", p.uid, "pid", p.pid, "owner", s.owner)
			}
			writeErr(w, http.StatusForbidden, fmt.Errorf("permission denied: uid %d may not use cgwd's control socket (only root and uid %d); run cgwctl with sudo", p.uid, s.owner))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ownerOf returns the uid owning a file.
func ownerOf(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
