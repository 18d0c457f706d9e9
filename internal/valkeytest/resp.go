package valkeytest

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// DoTimeout bounds one Do: dial, write and read.
const DoTimeout = 5 * time.Second

// ErrNil is returned by Do for a nil reply, such as GET of a missing key.
var ErrNil = errors.New("valkeytest: nil reply")

// ReplyError is an error reply of the server, such as "MOVED 3999
// 127.0.0.1:6381" or "WRONGTYPE …", verbatim.
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

// Do sends one command over a fresh connection and returns the reply as a
// string: simple and bulk strings as they are (binary-safe), integers in
// decimal, arrays as their elements joined by "\n" (nested ones
// flattened, nil elements empty). A nil reply returns ErrNil, an error
// reply a ReplyError.
func (s *Server) Do(args ...string) (string, error) {
	v, err := s.do(args, DoTimeout)
	if err != nil {
		return "", err
	}
	if v == nil {
		return "", ErrNil
	}
	return strings.Join(flatten(nil, v), "\n"), nil
}

// DoArray is Do for commands that reply with an array: it returns the
// elements (nested arrays flattened, nil elements empty). A nil reply
// returns ErrNil; a reply that is not an array is one element.
func (s *Server) DoArray(args ...string) ([]string, error) {
	v, err := s.do(args, DoTimeout)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, ErrNil
	}
	return flatten([]string{}, v), nil
}

func flatten(dst []string, v any) []string {
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			dst = flatten(dst, e)
		}
		return dst
	case nil:
		return append(dst, "")
	case int64:
		return append(dst, strconv.FormatInt(v, 10))
	default:
		return append(dst, v.(string))
	}
}

// do runs one command on s, over TLS and after AUTH when s has them.
func (s *Server) do(args []string, timeout time.Duration) (any, error) {
	var cfg *tls.Config
	if s.ca != nil {
		cfg = s.ca.ClientConfig()
	}
	var auth []string
	if s.password != "" {
		auth = []string{"AUTH", s.password}
	}
	return do(s.Addr, cfg, auth, args, timeout)
}

// do runs one command on addr (over TLS with cfg, after the command auth
// unless it is nil) and returns its reply: string, int64, nil or []any.
func do(addr string, cfg *tls.Config, auth, args []string, timeout time.Duration) (any, error) {
	d := &net.Dialer{Timeout: timeout}
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, cfg)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	w := bufio.NewWriter(c)
	for _, cmd := range [][]string{auth, args} {
		if cmd == nil {
			continue
		}
		fmt.Fprintf(w, "*%d\r\n", len(cmd))
		for _, a := range cmd {
			fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
		}
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	if auth != nil {
		if _, err := readReply(r); err != nil {
			return nil, fmt.Errorf("valkeytest: AUTH: %w", err)
		}
	}
	return readReply(r)
}

// readReply reads one RESP2 reply. An error reply is returned as a
// ReplyError; an error inside an array ends the read the same way.
func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("valkeytest: malformed reply line %q", line)
	}
	kind, body := line[0], line[1:len(line)-2]
	switch kind {
	case '+':
		return body, nil
	case '-':
		return nil, ReplyError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("valkeytest: bad bulk length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		if buf[n] != '\r' || buf[n+1] != '\n' {
			return nil, errors.New("valkeytest: bulk string not ended by CRLF")
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < -1 {
			return nil, fmt.Errorf("valkeytest: bad array length %q", body)
		}
		if n == -1 {
			return nil, nil
		}
		a := make([]any, n)
		for i := range a {
			if a[i], err = readReply(r); err != nil {
				return nil, err
			}
		}
		return a, nil
	default:
		return nil, fmt.Errorf("valkeytest: unexpected reply type %q", kind)
	}
}
