package h2

import (
	"context"
	"net/http/httptrace"
	"net/textproto"
)

func httptraceCtx(got1xx func(code int)) context.Context {
	return httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, _ textproto.MIMEHeader) error { got1xx(code); return nil },
	})
}
