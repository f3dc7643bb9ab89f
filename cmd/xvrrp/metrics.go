package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/xvrrp/xvrrp/vrrp/agent"
	"github.com/xvrrp/xvrrp/vrrp/metrics"
)

// metricsServer serves Prometheus metrics on --metrics-listen. It listens
// before the agent loads anything, so that an address in use is an error that
// leaves nothing behind, and serves once the agent exists.
type metricsServer struct {
	l   net.Listener
	srv *http.Server
}

// listenMetrics listens on addr; nil when addr is empty (metrics are opt-in).
func listenMetrics(addr string) (*metricsServer, error) {
	if addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics: %w", err)
	}
	return &metricsServer{l: l}, nil
}

// serve answers /metrics from the agent's Status until close.
func (m *metricsServer) serve(a *agent.Agent, log *slog.Logger) {
	if m == nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(metrics.New(a.Status)))
	m.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.srv.Serve(m.l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("metrics server", "error", err)
		}
	}()
	log.Info("serving metrics", "address", "http://"+m.l.Addr().String()+"/metrics")
}

func (m *metricsServer) close() {
	if m == nil {
		return
	}
	if m.srv != nil {
		m.srv.Close()
		return
	}
	m.l.Close()
}
