package admin

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

//go:embed statuspage
var statusFS embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"ago": func(t time.Time) string { return time.Since(t).Round(time.Second).String() + " ago" },
	"when": func(t time.Time) string {
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"bytes": humanBytes,
	"sum": func(m map[string]uint64) uint64 {
		var n uint64
		for _, v := range m {
			n += v
		}
		return n
	},
	"num": func(f float64) string { return fmt.Sprintf("%.0f", f) },
}).ParseFS(statusFS, "statuspage/*.html"))

// pageData is what the status page template renders.
type pageData struct {
	Status
	Chart       template.HTML
	HitRatio    float64 // over the chart's window
	L1Ratio     float64
	L2Ratio     float64
	WindowLabel string
	Refresh     int
}

// page renders the status page. It refreshes itself every few seconds.
func (a *Admin) page(c echo.Context) error {
	st := a.Status()
	d := pageData{Status: st, Refresh: int(historyInterval / time.Second)}
	var req, l1, l2 float64
	for _, p := range st.HitRatio {
		req, l1, l2 = req+p.Requests, l1+p.HitsL1, l2+p.HitsL2
	}
	d.WindowLabel = "last " + (time.Duration(len(st.HitRatio)) * historyInterval).String()
	if len(st.HitRatio) == 0 { // before the first interval: since start
		for _, o := range cacheableOutcomes {
			req += st.Requests[o]
		}
		l1, l2, d.WindowLabel = st.Hits["l1"], st.Hits["l2"], "since start"
	}
	if req > 0 {
		d.L1Ratio, d.L2Ratio = l1/req, l2/req
		d.HitRatio = d.L1Ratio + d.L2Ratio
	}
	d.Chart = hitChart(st.HitRatio)
	return a.render(c, http.StatusOK, "index.html", d)
}

// loginPage answers 401 with a form for the token. Its script also takes
// a token from the URL fragment (#token=…), which browsers do not send to
// the server, posts it to /admin/login as a bearer token and reloads.
func (a *Admin) loginPage(c echo.Context, msg string) error {
	c.Response().Header().Set("WWW-Authenticate", `Bearer realm="edgecache admin"`)
	return a.render(c, http.StatusUnauthorized, "login.html", map[string]string{"Message": msg})
}

func (a *Admin) render(c echo.Context, code int, name string, data any) error {
	var buf bytes.Buffer
	if err := pageTemplates.ExecuteTemplate(&buf, name, data); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; img-src data:")
	return c.HTMLBlob(code, buf.Bytes())
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH = 600.0, 160.0
	chartPad       = 30.0
)

// hitChart draws the hit ratio of each interval as two stacked areas, L1
// below and L2 above it, over the chart's full window (empty on the left
// until the history fills).
func hitChart(pts []HistoryPoint) template.HTML {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="hit ratio by tier">`, chartW+chartPad+2, chartH+22)
	for _, y := range []float64{0, .5, 1} {
		py := chartH - y*chartH + 5
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" class="grid"/><text x="0" y="%.1f" class="axis">%.0f%%</text>`, chartPad, chartW+chartPad, py, py, py+4, y*100)
	}
	x := func(i int) float64 { return chartPad + float64(historySize-len(pts)+i)*chartW/float64(historySize-1) }
	y := func(r float64) float64 { return chartH - math.Min(math.Max(r, 0), 1)*chartH + 5 }
	if len(pts) > 0 {
		var l1Top, l2Top []string
		for i, p := range pts {
			r1, r2 := 0.0, 0.0
			if p.Requests > 0 {
				r1, r2 = p.HitsL1/p.Requests, p.HitsL2/p.Requests
			}
			l1Top = append(l1Top, fmt.Sprintf("%.1f,%.1f", x(i), y(r1)))
			l2Top = append(l2Top, fmt.Sprintf("%.1f,%.1f", x(i), y(r1+r2)))
		}
		base := fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(len(pts)-1), y(0), x(0), y(0))
		// L2 is drawn from the L1 line up: its polygon runs along l2Top,
		// then back along l1Top.
		rev := make([]string, len(l1Top))
		for i := range l1Top {
			rev[len(l1Top)-1-i] = l1Top[i]
		}
		fmt.Fprintf(&b, `<polygon class="l2" points="%s %s"/>`, strings.Join(l2Top, " "), strings.Join(rev, " "))
		fmt.Fprintf(&b, `<polygon class="l1" points="%s %s"/>`, strings.Join(l1Top, " "), base)
	} else {
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="axis">collecting: a sample every %s</text>`, chartPad+10, chartH/2, historyInterval)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" class="axis">%s ago</text><text x="%.0f" y="%.0f" class="axis" text-anchor="end">now</text>`,
		chartPad, chartH+18, time.Duration(historySize-1)*historyInterval, chartW+chartPad, chartH+18)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func humanBytes(n any) string {
	var f float64
	switch v := n.(type) {
	case uint64:
		f = float64(v)
	case int64:
		f = float64(v)
	case int:
		f = float64(v)
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0f %s", f, units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
