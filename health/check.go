package health

import (
	"context"
	"fmt"
	"net"
	"net/http"

	"github.com/xvrrp/xvrrp/vrrp/config"
)

// checkProbe returns the probe of an xvrrp_check: a TCP connect, or an HTTP GET
// that must answer the expected status. Each probe opens a new connection.
func checkProbe(s *config.Script) func(context.Context) (bool, error) {
	to := timeout(s)
	c := s.Check
	switch c.Kind {
	case config.CheckTCP:
		d := net.Dialer{Timeout: to}
		return func(ctx context.Context) (bool, error) {
			conn, err := d.DialContext(ctx, "tcp", c.Target)
			if err != nil {
				return false, err
			}
			conn.Close()
			return true, nil
		}
	default:
		client := &http.Client{
			Timeout:       to,
			Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		return func(ctx context.Context) (bool, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Target, nil)
			if err != nil {
				return false, err
			}
			resp, err := client.Do(req)
			if err != nil {
				return false, err
			}
			resp.Body.Close()
			if resp.StatusCode != c.Status {
				return false, fmt.Errorf("GET %s: status %d, want %d", c.Target, resp.StatusCode, c.Status)
			}
			return true, nil
		}
	}
}
