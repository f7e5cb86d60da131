package apiguard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// bodyState is the request body, read once and kept for the handler.
type bodyState struct {
	data     []byte
	err      error
	replay   *replayBody   // the Body handed on, rewound for each handler
	src, dst *http.Request // the request forwarded, and its copy
}

// readBody reads the request body once, at most limit bytes, and keeps it
// for the handler (see forward). A body over the limit, by its
// Content-Length or by what arrives, or refused by an http.MaxBytesReader
// further out, is ErrBodyTooLarge; a failed read is ErrInvalidBody. The
// first call decides: later calls get its result whatever their limit.
func (s *state) readBody(r *http.Request, limit int64) ([]byte, error) {
	if b := s.body; b != nil {
		return b.data, b.err
	}
	b := &bodyState{}
	s.body = b
	switch {
	case r.Body == nil || r.Body == http.NoBody:
		b.data = []byte{}
		return b.data, nil
	case r.ContentLength > limit:
		b.err = ErrBodyTooLarge
		return nil, b.err
	}
	// One allocation when the length is known: room for the announced bytes
	// and one more, so that the read which meets EOF needs no growth.
	n := r.ContentLength + 1
	if n <= 0 || n > 64<<10 {
		n = 512
	}
	buf := make([]byte, 0, n)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		// Never ask for more than one byte past the limit.
		room := buf[len(buf):cap(buf)]
		if max := limit + 1 - int64(len(buf)); int64(len(room)) > max {
			room = room[:max]
		}
		m, err := r.Body.Read(room)
		buf = buf[:len(buf)+m]
		if int64(len(buf)) > limit {
			b.err = ErrBodyTooLarge
			return nil, b.err
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				b.err = ErrBodyTooLarge
			} else {
				b.err = fmt.Errorf("%w: reading body: %w", ErrInvalidBody, err)
			}
			return nil, b.err
		}
	}
	b.data = buf
	return b.data, nil
}

// forward returns the request to hand to the next handler: r itself, or,
// once the body has been read, a copy whose Body yields the same bytes.
// Forwarding the same request again (a hash scheme hands it to a price
// function, then the wrapper to the handler) rewinds the body of the copy
// already made.
func (s *state) forward(r *http.Request) *http.Request {
	b := s.body
	if b == nil || b.err != nil || r.Body == nil || r.Body == http.NoBody {
		return r
	}
	if b.replay != nil && (r.Body == b.replay || r == b.src) {
		b.replay.Reset(b.data)
		if r == b.src {
			return b.dst
		}
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	rb := new(replayBody)
	rb.Reset(b.data)
	b.replay, b.src, b.dst = rb, r, r2
	r2.Body = rb
	r2.ContentLength = int64(len(b.data))
	data := b.data
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	return r2
}

// replayBody is the Body forward hands on: the kept bytes, read once more.
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
