package apiguard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// keptBody is the request body once something has read it (a hash
// scheme, a user's Scheme through ReadBody): read once, at most a limit,
// and handed on whole to every reader after that. It is the one owner of
// the body: nothing else in the package reads or replaces r.Body.
type keptBody struct {
	data     []byte
	err      error
	rd       replayBody                    // the Body handed on, rewound at each hand-on
	getBody  func() (io.ReadCloser, error) // the GetBody handed on
	src, dst *http.Request                 // a request not the state's own that was handed on, and its copy
	reserved int64                         // bytes reserved in the state's budget
	probe    [1]byte                       // the read past a body's announced end (readEnd)
}

// smallBody is the most bytes of a body kept in a keptSmall: 256, so that
// a bodyCarrier (a request, its state and a keptSmall, 760 bytes) and the
// 8-byte header the runtime gives an object of pointers over 512 bytes
// fill a 768-byte allocation.
const smallBody = 256

// keptSmall is a keptBody with room for a small body, in one allocation.
type keptSmall struct {
	keptBody
	buf [smallBody]byte
}

// defaultBodyBudget is a Guard's budget of buffered body bytes unless
// WithBodyBudget says otherwise.
const defaultBodyBudget = 64 << 20

// bodyBudget is a Guard's budget of buffered body bytes (WithBodyBudget),
// shared by its requests in flight.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

func newBodyBudget(n int64) *bodyBudget {
	if n == 0 {
		n = defaultBodyBudget
	}
	return &bodyBudget{max: n}
}

// reserve takes n bytes of the budget, if they are free.
func (b *bodyBudget) reserve(n int64) bool {
	if b.used.Add(n) > b.max {
		b.used.Add(-n)
		return false
	}
	return true
}

// errBodyBudgetSpent refuses a request whose body would take the Guard's
// budget of buffered bytes past its bound.
var errBodyBudgetSpent = &Error{
	Status:     http.StatusServiceUnavailable,
	Code:       "unavailable",
	RetryAfter: time.Second,
	Err:        fmt.Errorf("%w: the budget of buffered request bodies is spent", ErrUnavailable),
}

// done gives back the body bytes s reserved in its budget, once the
// request is done: the wrapper that set the state up (or Identify) calls
// it.
func (s *state) done() {
	if b := s.body; b != nil && b.reserved > 0 {
		s.budget.used.Add(-b.reserved)
		b.reserved = 0
	}
}

// readBody reads the request body once, at most limit bytes, and keeps it
// for the handler (see handOn). A body over the limit, by its
// Content-Length or by what arrives, or refused by an http.MaxBytesReader
// further out, is ErrBodyTooLarge; a failed read is ErrInvalidBody. The
// first call decides: later calls get its result whatever their limit.
func (s *state) readBody(r *http.Request, limit int64) ([]byte, error) {
	if b := s.body; b != nil {
		return b.data, b.err
	}
	// A small body of known length is kept in one allocation with its
	// bytes.
	var small []byte
	var b *keptBody
	if n := r.ContentLength; n > 0 && n <= smallBody && n <= limit {
		kb := s.spare
		if kb == nil {
			kb = new(keptSmall)
		}
		s.spare = nil
		b, small = &kb.keptBody, kb.buf[:n]
	} else {
		b = new(keptBody)
	}
	s.body = b
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		b.data = []byte{}
		return b.data, nil
	case r.ContentLength > limit:
		b.err = ErrBodyTooLarge
		return nil, b.err
	}
	if s.budget != nil {
		n := limit
		if r.ContentLength > 0 {
			n = r.ContentLength
		}
		if !s.budget.reserve(n) {
			b.err = errBodyBudgetSpent
			return nil, b.err
		}
		b.reserved = n
	}
	// A body of known length is read into one buffer of that length, and
	// one read more must meet its end; a body of unknown length (or one
	// that runs past its Content-Length) into pooled chunks, then copied
	// into one buffer of its length. Either way a body of n bytes costs one
	// allocation of about n bytes, and one over the limit none beyond the
	// pool's chunks.
	var data []byte
	var err error
	if r.ContentLength > 0 {
		buf := small
		if buf == nil {
			buf = make([]byte, r.ContentLength)
		}
		n, rerr := readFull(r.Body, buf)
		switch {
		case rerr != nil:
			err = rerr
		case n < len(buf):
			data = buf[:n]
		default:
			var more bool
			var c byte
			switch more, c, err = readEnd(r.Body, buf, b.probe[:]); {
			case err != nil:
			case !more:
				data = buf
			case int64(n) >= limit:
				err = ErrBodyTooLarge
			default: // more bytes than announced
				data, err = readChunked(r.Body, append(buf, c), limit)
			}
		}
	} else {
		data, err = readChunked(r.Body, nil, limit)
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok || err == ErrBodyTooLarge {
			b.err = ErrBodyTooLarge
		} else {
			b.err = fmt.Errorf("%w: reading body: %w", ErrInvalidBody, err)
		}
		return nil, b.err
	}
	b.data = data
	return b.data, nil
}

// readFull reads from body into buf until buf is full or body ends. It
// returns the bytes read, and the error that stopped it other than EOF.
func readFull(body io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := body.Read(buf[n:])
		n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readEnd reads on from body, whose bytes up to now fill buf, to see
// whether it ends there: it reports whether body holds more, and the byte
// it read if so. The byte is read into buf's spare capacity, or into probe
// (the kept body's, already on the heap), so that the read allocates
// nothing.
func readEnd(body io.Reader, buf, probe []byte) (more bool, c byte, err error) {
	p := probe
	if cap(buf) > len(buf) {
		p = buf[len(buf) : len(buf)+1]
	}
	m, err := body.Read(p)
	for m == 0 && err == nil {
		m, err = body.Read(p)
	}
	switch {
	case m > 0:
		return true, p[0], nil
	case err == io.EOF:
		return false, 0, nil
	}
	return false, 0, err
}

// bodyChunk is the size of the chunks a body of unknown length is read
// into.
const bodyChunk = 32 << 10

// chunks is a reader's chunks, pooled as one: a read takes a set, grows it
// if the body needs more, and puts it back whole, so that a body of any
// size costs no allocation for its chunks once the pool holds a set that
// large. The pool drops its sets at garbage collection.
type chunks struct {
	c     []*[bodyChunk]byte
	probe [1]byte // the read past the limit, which would escape from the stack
}

var bodyChunks = sync.Pool{New: func() any { return new(chunks) }}

// readChunked reads the rest of body, after the bytes of head already read
// from it, into pooled chunks, never asking for more than the limit (less
// head) and one byte. It returns head and the rest in one buffer of their
// length, or ErrBodyTooLarge when they run over the limit.
func readChunked(body io.Reader, head []byte, limit int64) ([]byte, error) {
	cs := bodyChunks.Get().(*chunks)
	defer bodyChunks.Put(cs)
	used := 0
	n := int64(len(head)) // bytes in all
	last := bodyChunk     // bytes in the last chunk
	for {
		if n >= limit {
			// At the limit: the body must end here.
			m, err := body.Read(cs.probe[:])
			for m == 0 && err == nil {
				m, err = body.Read(cs.probe[:])
			}
			if m > 0 {
				return nil, ErrBodyTooLarge
			}
			if err != io.EOF {
				return nil, err
			}
			break
		}
		if last == bodyChunk {
			if used == len(cs.c) {
				cs.c = append(cs.c, new([bodyChunk]byte))
			}
			used++
			last = 0
		}
		room := cs.c[used-1][last:]
		if max := limit - n; int64(len(room)) > max {
			room = room[:max]
		}
		m, err := body.Read(room)
		last += m
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]byte, n)
	off := copy(out, head)
	for _, c := range cs.c[:used] {
		off += copy(out[off:], c[:])
	}
	return out, nil
}

// handOn returns the request to hand to the next reader (the next
// handler, a function a Scheme calls): r itself until the body has been
// read, then a request whose Body yields the kept bytes from the start.
// The request begin made is the package's own copy and gets the kept body
// in place; any other request (one a middleware in between made) is
// copied, once: handing the same request on again rewinds that copy.
func (s *state) handOn(r *http.Request) *http.Request {
	b := s.body
	if b == nil || b.err != nil || r.Body == nil || r.Body == http.NoBody {
		return r
	}
	switch {
	case r == b.src:
		b.rd.Reset(b.data)
		return b.dst
	case r != s.own() && r.Body != &b.rd:
		r2 := new(http.Request)
		*r2 = *r
		b.src, b.dst = r, r2
		r = r2
	}
	b.install(r)
	if b.getBody == nil {
		data := b.data
		b.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	r.GetBody = b.getBody
	return r
}

// install makes the kept bytes, from the start, the Body of r.
func (b *keptBody) install(r *http.Request) {
	b.rd.Reset(b.data)
	r.Body = &b.rd
	r.ContentLength = int64(len(b.data))
}

// restore gives r, a request the caller holds (Identify's, ReadBody's),
// the kept bytes in place of the body that was read from it.
func (s *state) restore(r *http.Request) {
	b := s.body
	switch {
	case b == nil || b.err != nil || r.Body == nil || r.Body == http.NoBody:
	case r == s.own() || r.Body == &b.rd:
		b.install(r) // GetBody comes with the hand-on to the next handler
	default:
		rb := new(replayBody)
		rb.Reset(b.data)
		r.Body, r.ContentLength = rb, int64(len(b.data))
	}
}

// ReadBody returns the body of r, read once and kept: every Scheme,
// wrapper and handler that asks again gets the same bytes, and the next
// handler gets them as its r.Body. It reads at most limit bytes: a longer
// body, by its Content-Length or by what arrives, is ErrBodyTooLarge
// (413), one that fails to arrive ErrInvalidBody (400). The first read
// decides: later calls get its result, whatever their limit.
//
// On a request a Guard's wrapper (or Identify) set up, ReadBody first
// reserves the body's Content-Length, or limit when it is unknown, in the
// Guard's budget of buffered bytes (WithBodyBudget), and the wrapper gives
// it back once the request is done; when the budget is spent it reads
// nothing and returns an *Error of status 503 (matching ErrUnavailable)
// with a Retry-After of 1 second.
//
// A Scheme that needs the body (to check a signature over it) reads it
// with ReadBody, as the package's hash schemes do. Called on a request
// that no apiguard wrapper has seen, ReadBody reads r.Body and puts the
// same bytes back as r.Body.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	s := stateFrom(r.Context())
	if s == nil {
		s = new(state)
	}
	data, err := s.readBody(r, limit)
	s.restore(r)
	return data, err
}

// replayBody is the Body handOn hands on: the kept bytes, read once more.
type replayBody struct{ bytes.Reader }

func (*replayBody) Close() error { return nil }

// rewind puts the kept body of r back at its start, so that every function
// handed the request (the owner, each computed field, for each key tried)
// reads the whole body.
func rewind(r *http.Request) {
	if rb, ok := r.Body.(*replayBody); ok {
		rb.Seek(0, io.SeekStart)
	}
}
