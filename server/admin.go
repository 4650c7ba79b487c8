package server

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ambassador-proxy/ambassador/cluster"
)

// AdminHandler serves /healthz, /readyz, /metrics, /nodes and /config.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.HandleHealthz)
	mux.HandleFunc("GET /readyz", s.HandleReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	mux.HandleFunc("GET /nodes", s.HandleNodes)
	mux.HandleFunc("GET /config", s.HandleConfig)
	// Profiling, for the admin endpoint only (it listens on loopback by
	// default).
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ambassador " + s.opts.Version + "\n/healthz /readyz /metrics /nodes /config /debug/pprof/\n"))
	})
	return mux
}

// HandleHealthz answers 200 while the process runs.
func (s *Server) HandleHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Readiness is the /readyz report.
type Readiness struct {
	Ready   bool     `json:"ready"`
	Reasons []string `json:"reasons,omitempty"`
}

// Readyz reports whether every enabled frontend listens and has at least
// one healthy node (and its own conditions hold).
func (s *Server) Readyz() Readiness {
	var r Readiness
	select {
	case <-s.started:
	default:
		r.Reasons = append(r.Reasons, "not started")
		return r
	}
	if s.stopping.Load() {
		// the listeners are closed: a load balancer must stop sending
		r.Reasons = append(r.Reasons, "shutting down")
		return r
	}
	for _, f := range s.fronts {
		for _, cl := range f.clusters {
			if err := cl.Ready(); err != nil {
				r.Reasons = append(r.Reasons, f.name+": "+err.Error())
			}
		}
		if rd, ok := f.fe.(Readier); ok {
			if err := rd.Ready(); err != nil {
				r.Reasons = append(r.Reasons, f.name+": "+err.Error())
			}
		}
	}
	r.Ready = len(r.Reasons) == 0
	return r
}

// HandleReadyz answers 200 when ready, else 503, with a JSON body.
func (s *Server) HandleReadyz(w http.ResponseWriter, _ *http.Request) {
	r := s.Readyz()
	code := http.StatusOK
	if !r.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, r)
}

// ClusterReport is one cluster in the /nodes report.
type ClusterReport struct {
	Name   string           `json:"name"`
	Policy string           `json:"policy"`
	Nodes  []cluster.Status `json:"nodes"`
}

// NodesReport is the /nodes report.
type NodesReport struct {
	Clusters []ClusterReport `json:"clusters"`
}

// Nodes reports every node of every cluster.
func (s *Server) Nodes() NodesReport {
	var r NodesReport
	for _, cl := range s.Clusters() {
		r.Clusters = append(r.Clusters, ClusterReport{Name: cl.Name(), Policy: cl.Policy(), Nodes: cl.Snapshot()})
	}
	return r
}

// HandleNodes serves the /nodes report as JSON.
func (s *Server) HandleNodes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Nodes())
}

// HandleConfig serves the effective configuration, secrets redacted: JSON,
// or YAML with ?format=yaml.
func (s *Server) HandleConfig(w http.ResponseWriter, r *http.Request) {
	cfg := s.cfg.Load()
	if r.URL.Query().Get("format") == "yaml" {
		w.Header().Set("Content-Type", "application/yaml")
		_, _ = w.Write(cfg.Redacted())
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<redacted>", not "\u003credacted\u003e"
	_ = enc.Encode(v)
}
