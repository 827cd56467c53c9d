package ike

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/cgwproject/cgw/ike/message"
	"github.com/cgwproject/cgw/internal/clock"
)

// A task is one protocol step that contributes payloads to an exchange,
// after strongSwan's task_t. The same type serves both roles: as initiator
// build writes the request and process reads the response; as responder
// process reads the request and build writes the response. A task touches
// only its own payloads; message IDs, retransmission and the response cache
// belong to the taskManager.
type task interface {
	kind() taskKind
	// exchange is the exchange the task needs when we initiate it.
	exchange() message.ExchangeType
	build(m *message.Message) error
	process(m *message.Message) (status, error)
}

type taskKind int

const (
	// Activation priority when several are queued on an established SA
	// (lower first), as in strongSwan's task_manager_v2.
	taskIKEDelete taskKind = iota + 1
	taskChildDelete
	taskIKERekey
	taskChildRekey
	taskChildCreate
	taskDPD
	taskIKEInit
	taskNATD
	taskIKEAuth
	taskInformational
)

type status int

const (
	statusDone   status = iota // the task is finished
	statusRetry                // initiator: rebuild and resend the exchange (COOKIE, INVALID_KE_PAYLOAD)
	statusFailed               // the IKE SA is unusable
)

// notifyError is a failure that answers the peer with an error notify.
// fatal means the IKE SA cannot continue (IKE_SA_INIT, AUTH failures).
type notifyError struct {
	notify message.NotifyType
	data   []byte
	reason string
	fatal  bool
	quiet  bool // a normal protocol step (INVALID_KE_PAYLOAD): no failure event
}

func (e *notifyError) Error() string { return e.reason }

// taskManager runs the exchanges of one IKE SA (RFC 7296, Section 2.3): a
// window of one request in each direction, retransmission of our request at
// RetransmitTimeout*1.8^n, a cached response re-sent for a retransmitted
// request, and a queue of tasks activated one exchange at a time.
type taskManager struct {
	sa      *ikeSA
	myMID   uint32 // message ID of our next request
	peerMID uint32 // message ID of the peer's next request
	queued  []task
	active  *exchange
	// The last response we sent, for a retransmitted request (2.2).
	lastRespMID  uint32
	lastResp     [][]byte // its datagrams (several when fragmented)
	haveLastResp bool
	// resendTokens and resendAt rate-limit re-sent cached responses: a
	// replayed request must not turn us into a reflector.
	resendTokens float64
	resendAt     time.Time
	gen          uint64
}

// Re-sent cached responses: a burst of resendBurst, then one per
// resendInterval per IKE SA. A peer retransmits at RetransmitTimeout*1.8^n
// (4 s and more), far below this.
const (
	resendBurst    = 3
	resendInterval = time.Second
)

// exchange is our request in flight.
type exchange struct {
	typ   message.ExchangeType
	mid   uint32
	tasks []task
	pkts  [][]byte // the request's datagrams (several when fragmented)
	sends int
	timer clock.Timer
	gen   uint64
	dpd   bool

	// The request and its cipher, to re-fragment it (shrinkFragments).
	msg    *message.Message
	c      message.Cipher
	shrunk bool
}

func newTaskManager(sa *ikeSA) *taskManager { return &taskManager{sa: sa} }

// queue adds a task and starts it when nothing is in flight.
func (tm *taskManager) queue(t task) {
	tm.queued = append(tm.queued, t)
	tm.initiate()
}

// queueFront adds a task ahead of the others (a retry).
func (tm *taskManager) queueFront(t task) {
	tm.queued = append([]task{t}, tm.queued...)
	tm.initiate()
}

func (tm *taskManager) hasQueued(k taskKind) bool {
	for _, t := range tm.queued {
		if t.kind() == k {
			return true
		}
	}
	return false
}

func (tm *taskManager) activeKind(k taskKind) task {
	if tm.active == nil {
		return nil
	}
	for _, t := range tm.active.tasks {
		if t.kind() == k {
			return t
		}
	}
	return nil
}

func (tm *taskManager) busy() bool { return tm.active != nil || len(tm.queued) > 0 }

// initiate starts the next exchange if none is in flight. Before the SA is
// established, tasks sharing IKE_SA_INIT or IKE_AUTH go together; later,
// every task is an exchange of its own, highest priority first.
func (tm *taskManager) initiate() {
	sa := tm.sa
	if tm.active != nil || len(tm.queued) == 0 || !sa.alive() {
		return
	}
	idx := 0
	if sa.state != ikeConnecting {
		for i, t := range tm.queued {
			if t.kind() < tm.queued[idx].kind() {
				idx = i
			}
		}
	}
	first := tm.queued[idx]
	typ := first.exchange()
	ex := &exchange{typ: typ, mid: tm.myMID}
	if typ == message.IKESAInit || typ == message.IKEAuth {
		var rest []task
		for _, t := range tm.queued {
			if t.exchange() == typ {
				ex.tasks = append(ex.tasks, t)
			} else {
				rest = append(rest, t)
			}
		}
		tm.queued = rest
	} else {
		ex.tasks = []task{first}
		tm.queued = append(tm.queued[:idx:idx], tm.queued[idx+1:]...)
	}
	ex.dpd = first.kind() == taskDPD
	tm.active = ex
	tm.sendRequest()
}

// sendRequest has the active tasks build the request and transmits it.
func (tm *taskManager) sendRequest() {
	sa, ex := tm.sa, tm.active
	m := &message.Message{Header: sa.header(ex.typ, ex.mid, false)}
	var kept []task
	for _, t := range ex.tasks {
		if err := t.build(m); err != nil {
			if isSetupTask(t) {
				tm.active = nil
				sa.p.failSA(sa, fmt.Errorf("ike: building %s: %w", ex.typ, err), 0)
				return
			}
			if ne := (*notifyError)(nil); errors.As(err, &ne) && ne.quiet {
				// A normal race: the SA the task was for is gone or
				// replaced (a collision, a DELETE from the peer).
				sa.p.log.Info("dropping a queued exchange that is no longer needed", "exchange", ex.typ.String(), "reason", err.Error())
			} else {
				sa.p.log.Warn("dropping exchange", "exchange", ex.typ.String(), "err", err)
			}
			continue
		}
		kept = append(kept, t)
	}
	if !sa.alive() {
		return
	}
	ex.tasks = kept
	if len(kept) == 0 {
		tm.active = nil
		tm.initiate()
		return
	}
	var c message.Cipher
	if ex.typ != message.IKESAInit {
		c = sa.out
	}
	pkts, err := sa.encode(m, c)
	if err != nil {
		tm.active = nil
		sa.p.failSA(sa, fmt.Errorf("ike: encoding %s request: %w", ex.typ, err), 0)
		return
	}
	if ex.typ == message.IKESAInit {
		sa.initReq = pkts[0]
	}
	ex.pkts, ex.msg, ex.c, ex.shrunk = pkts, m, c, false
	ex.sends = 0
	tm.gen++
	ex.gen = tm.gen
	tm.transmit()
}

func isSetupTask(t task) bool {
	switch t.kind() {
	case taskIKEInit, taskNATD, taskIKEAuth:
		return true
	}
	return false
}

// transmit sends the active request and arms its retransmission timer.
func (tm *taskManager) transmit() {
	sa, ex := tm.sa, tm.active
	ex.sends++
	sa.sendAll(sa.local, sa.remote, ex.pkts)
	cfg := sa.p.cfg
	var timeout time.Duration
	var limit int
	if ex.dpd {
		// DPD uses its own spacing so that a dead peer is declared after
		// DPDInterval*(DPDRetries+1) of silence, AWS's 40 s timeline.
		timeout, limit = cfg.DPDInterval, cfg.DPDRetries
	} else {
		timeout = time.Duration(float64(cfg.RetransmitTimeout) * math.Pow(retransmitBase, float64(ex.sends-1)))
		limit = cfg.RetransmitTries + 1
	}
	mid, gen := ex.mid, ex.gen
	if ex.timer != nil {
		ex.timer.Stop()
	}
	ex.timer = sa.after(timeout, func() { tm.retransmit(mid, gen, limit) })
}

func (tm *taskManager) retransmit(mid uint32, gen uint64, limit int) {
	ex := tm.active
	if ex == nil || ex.mid != mid || ex.gen != gen {
		return // stale timer
	}
	sa := tm.sa
	if ex.sends >= limit {
		tm.active = nil
		abortTasks(ex.tasks)
		sa.p.retransmitsExhausted(sa, ex)
		return
	}
	if ex.dpd {
		sa.dpdMisses++
		sa.p.emit(Event{Kind: EventDPDMiss, Reason: fmt.Sprintf("no answer to DPD probe %d of %d", sa.dpdMisses, sa.p.cfg.DPDRetries)})
		sa.p.log.Info("DPD probe unanswered, retransmitting", "reason", fmt.Sprintf("no answer within %s", sa.p.cfg.DPDInterval),
			"misses", sa.dpdMisses, "retries", sa.p.cfg.DPDRetries)
	} else {
		sa.p.log.Info("retransmitting request", "reason", "no answer yet", "exchange", ex.typ.String(), "mid", mid, "try", ex.sends)
		if h := sa.largeRequestHint(ex); h != "" && ex.sends == 2 {
			// Say it now, not only when the retransmissions run out.
			sa.p.log.Warn("no answer to a request sent as one large datagram"+h, "exchange", ex.typ.String(), "mid", mid)
		}
		sa.shrinkFragments(ex)
	}
	tm.transmit()
}

// isNew reports whether an authenticated message is one the exchange
// window accepts (RFC 7296, Section 2.3): the peer's next request, or the
// response to our request in flight. Anything else (a retransmission or a
// replay) must not move endpoints or count as a sign of life.
func (tm *taskManager) isNew(m *message.Message) bool {
	if m.Header.IsResponse() {
		ex := tm.active
		return ex != nil && m.Header.MessageID == ex.mid && m.Header.Exchange == ex.typ
	}
	return m.Header.MessageID == tm.peerMID && !(tm.haveLastResp && m.Header.MessageID == tm.lastRespMID)
}

// allowResend takes a token for re-sending a cached response.
func (tm *taskManager) allowResend() bool {
	now := tm.sa.p.m.clock.Now()
	if tm.resendAt.IsZero() {
		tm.resendTokens = resendBurst
	} else {
		tm.resendTokens = min(resendBurst, tm.resendTokens+float64(now.Sub(tm.resendAt))/float64(resendInterval))
	}
	tm.resendAt = now
	if tm.resendTokens < 1 {
		return false
	}
	tm.resendTokens--
	return true
}

// handle processes one message that already authenticated (or, for
// IKE_SA_INIT, parsed).
func (tm *taskManager) handle(local, remote netip.AddrPort, m *message.Message) {
	tm.sa.rxLocal, tm.sa.rxRemote = local, remote
	if m.Header.IsResponse() {
		tm.handleResponse(m)
	} else {
		tm.handleRequest(local, remote, m)
	}
}

func (tm *taskManager) handleResponse(m *message.Message) {
	sa, ex := tm.sa, tm.active
	if ex == nil || m.Header.MessageID != ex.mid || m.Header.Exchange != ex.typ {
		sa.p.ignored++
		return
	}
	if ex.timer != nil {
		ex.timer.Stop()
	}
	if ex.typ == message.IKESAInit {
		sa.initResp = m.Raw
	}
	retry := false
	for _, t := range ex.tasks {
		st, err := t.process(m)
		if !sa.alive() {
			return
		}
		switch st {
		case statusFailed:
			tm.active = nil
			var ne *notifyError
			notify := message.NotifyType(0)
			if errors.As(err, &ne) {
				notify = ne.notify
			}
			sa.p.failSA(sa, err, notify)
			return
		case statusRetry:
			retry = true
		}
	}
	if retry {
		if ex.typ != message.IKESAInit {
			tm.myMID++
			ex.mid = tm.myMID
		}
		tm.sendRequest()
		return
	}
	tm.active = nil
	tm.myMID++
	tm.initiate()
}

func (tm *taskManager) handleRequest(local, remote netip.AddrPort, m *message.Message) {
	sa := tm.sa
	mid := m.Header.MessageID
	tm.sa.rxLocal, tm.sa.rxRemote = local, remote
	if tm.haveLastResp && mid == tm.lastRespMID {
		// A retransmitted request: the peer lost our response (2.2). It
		// may as well be a replay, so it changes nothing and its answer
		// is rate-limited.
		if !tm.allowResend() {
			sa.p.m.resendLimited.Add(1)
			return
		}
		sa.sendAll(local, remote, tm.lastResp)
		return
	}
	if mid != tm.peerMID {
		sa.p.ignored++ // RFC 7296, Section 2.3: outside the window
		return
	}
	if m.Header.Exchange == message.IKESAInit {
		sa.initReq = m.Raw
	}
	tasks := sa.p.responderTasks(sa, m)
	resp := &message.Message{Header: sa.header(m.Header.Exchange, mid, true)}
	var fail *notifyError
	for _, t := range tasks {
		st, err := t.process(m)
		if !sa.alive() {
			return
		}
		if st == statusFailed || err != nil {
			if !errors.As(err, &fail) {
				fail = &notifyError{notify: message.NotifyInvalidSyntax, reason: errString(err), fatal: true}
			}
			break
		}
	}
	if fail == nil {
		for _, t := range tasks {
			if err := t.build(resp); err != nil {
				if !errors.As(err, &fail) {
					fail = &notifyError{notify: message.NotifyNoProposalChosen, reason: err.Error(), fatal: isSetupTask(t)}
				}
				break
			}
			if !sa.alive() {
				return
			}
		}
	}
	if fail != nil {
		resp.Payloads = []message.Payload{&message.Notify{Kind: fail.notify, Data: fail.data}}
		if m.Header.Exchange == message.IKESAInit {
			resp.Header.SPIr = 0 // stateless refusal (RFC 7296, Section 2.6)
		}
	}
	var c message.Cipher
	if m.Header.Exchange != message.IKESAInit {
		c = sa.out
	}
	pkts, err := sa.encode(resp, c)
	if err != nil {
		sa.p.log.Error("cannot encode response", "exchange", m.Header.Exchange.String(), "err", err)
		return
	}
	if m.Header.Exchange == message.IKESAInit && fail == nil {
		sa.initResp = pkts[0]
	}
	tm.peerMID++
	tm.haveLastResp, tm.lastRespMID, tm.lastResp = true, mid, pkts
	sa.sendAll(local, remote, pkts)
	if fail != nil && fail.fatal {
		if fail.quiet {
			sa.p.log.Info(fail.reason)
			sa.p.destroySA(sa, fail.reason)
		} else {
			sa.p.failSA(sa, fail, fail.notify)
		}
		return
	}
	if fail != nil {
		return
	}
	for _, t := range tasks {
		if a, ok := t.(afterSender); ok && sa.alive() {
			a.afterSend()
		}
	}
}

// afterSender is implemented by responder tasks that act once their
// response is on the wire (deleting an SA, adopting a rekeyed IKE SA).
type afterSender interface{ afterSend() }

func errString(err error) string {
	if err == nil {
		return "unknown failure"
	}
	return err.Error()
}

// aborter is implemented by tasks that hold resources (allocated SPIs)
// to release when they are dropped unfinished.
type aborter interface{ abort() }

func abortTasks(ts []task) {
	for _, t := range ts {
		if a, ok := t.(aborter); ok {
			a.abort()
		}
	}
}

// abortQueued drops queued tasks but lets the active exchange finish.
func (tm *taskManager) abortQueued() {
	q := tm.queued
	tm.queued = nil
	abortTasks(q)
}

// abort drops every queued and active task (the SA is going away).
func (tm *taskManager) abort() {
	var ts []task
	if tm.active != nil {
		if tm.active.timer != nil {
			tm.active.timer.Stop()
		}
		ts = tm.active.tasks
	}
	tm.active = nil
	ts = append(ts, tm.queued...)
	tm.queued = nil
	abortTasks(ts)
}
