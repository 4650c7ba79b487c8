package kafka

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/protocols/kafka/wire"
)

// ErrAuth is a broker refusing the ambassador's SASL authentication.
var ErrAuth = errors.New("kafka: SASL authentication to the broker failed")

// security is how the ambassador reaches the brokers: TLS and SASL, both
// held by the ambassador, so that clients need no backend credentials.
type security struct {
	tls  *tls.Config    // nil: plaintext
	mech sasl.Mechanism // nil: no SASL
	desc string         // for logs: "plaintext", "TLS+SCRAM-SHA-256"...
}

func newSecurity(k *config.Kafka) (*security, error) {
	s := &security{desc: "plaintext"}
	if k.TLS.Enabled {
		tc := &tls.Config{
			MinVersion:         tls.VersionTLS12,
			ServerName:         k.TLS.ServerName,
			InsecureSkipVerify: k.TLS.InsecureSkipVerify, //nolint:gosec // the operator's explicit choice
		}
		if k.TLS.CAFile != "" {
			pem, err := os.ReadFile(k.TLS.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka.tls.ca_file %s: no PEM certificate in it", k.TLS.CAFile)
			}
			tc.RootCAs = pool
		}
		if k.TLS.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(k.TLS.CertFile, k.TLS.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka.tls.cert_file/key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		s.tls = tc
		s.desc = "TLS"
	}
	user, pass := k.SASL.Username, k.SASL.Password.Reveal()
	switch k.SASL.Mechanism {
	case "":
	case "PLAIN":
		s.mech = plain.Auth{User: user, Pass: pass}.AsMechanism()
	case "SCRAM-SHA-256":
		s.mech = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		s.mech = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: %q is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", k.SASL.Mechanism)
	}
	if s.mech != nil {
		if s.tls != nil {
			s.desc += "+" + s.mech.Name()
		} else {
			s.desc = s.mech.Name()
		}
	}
	return s, nil
}

// same reports whether two configurations connect alike.
func sameSecurity(a, b *config.Kafka) bool { return a.TLS == b.TLS && a.SASL == b.SASL }

// dial connects to a broker: TCP (no delay), TLS when configured, then
// SASL when configured (auth says whether to authenticate: a health probe's
// ApiVersions needs none). It returns the connection, the reader to keep
// reading it with, and the SASL session's lifetime when the broker gave
// one (KIP-368: the session is to be renewed on the connection before it
// ends, or the broker closes the connection).
func (s *security) dial(ctx context.Context, addr string, timeout time.Duration, auth bool) (net.Conn, *bufio.Reader, time.Duration, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, 0, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	deadline := time.Now().Add(timeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = conn.SetDeadline(deadline)
	if s.tls != nil {
		cfg := s.tls
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			if host, _, err := net.SplitHostPort(addr); err == nil {
				cfg.ServerName = host
			}
		}
		tconn := tls.Client(conn, cfg)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, nil, 0, fmt.Errorf("kafka: TLS to %s: %w", addr, err)
		}
		conn = tconn
	}
	br := bufio.NewReaderSize(newLowatReader(conn), 64<<10)
	var lifetime time.Duration
	if auth && s.mech != nil {
		id := "ambassador"
		corr := int32(0)
		roundTrip := func(req kmsg.Request) (kmsg.Response, error) {
			corr++
			if _, err := conn.Write(wire.AppendRequest(nil, corr, &id, req)); err != nil {
				return nil, err
			}
			frame, err := wire.ReadFrame(br, 1<<20, nil)
			if err != nil {
				return nil, err
			}
			if got, _ := wire.ResponseCorrelation(frame); got != corr {
				return nil, fmt.Errorf("%w: correlation id %d, want %d", wire.ErrMalformed, got, corr)
			}
			return wire.DecodeResponse(req.Key(), req.GetVersion(), frame)
		}
		if lifetime, err = authenticate(ctx, s.mech, addr, roundTrip); err != nil {
			conn.Close()
			return nil, nil, 0, err
		}
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, lifetime, nil
}

// authenticate runs SaslHandshake v1 and SaslAuthenticate v1 rounds until
// the mechanism is done, each through roundTrip, and returns the session
// lifetime the broker gave (0: none). It serves the first authentication
// of a connection and its renewals (KIP-368), which are the same
// exchange.
func authenticate(ctx context.Context, mech sasl.Mechanism, addr string, roundTrip func(kmsg.Request) (kmsg.Response, error)) (time.Duration, error) {
	hs := kmsg.NewPtrSASLHandshakeRequest()
	hs.Version = 1
	hs.Mechanism = mech.Name()
	resp, err := roundTrip(hs)
	if err != nil {
		return 0, fmt.Errorf("kafka: SASL handshake with %s: %w", addr, err)
	}
	if code := resp.(*kmsg.SASLHandshakeResponse).ErrorCode; code != 0 {
		return 0, fmt.Errorf("%w: %s at %s: %v (broker offers %v)", ErrAuth, mech.Name(), addr, kerr.ErrorForCode(code), resp.(*kmsg.SASLHandshakeResponse).SupportedMechanisms)
	}
	session, msg, err := mech.Authenticate(ctx, addr)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrAuth, err)
	}
	// Like kgo: write while the mechanism is not done or has a last
	// message; every SaslAuthenticate is answered.
	done := false
	var lifetime time.Duration
	for !done || len(msg) > 0 {
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version = 1
		req.SASLAuthBytes = msg
		resp, err := roundTrip(req)
		if err != nil {
			return 0, fmt.Errorf("kafka: SASL authenticate with %s: %w", addr, err)
		}
		ar := resp.(*kmsg.SASLAuthenticateResponse)
		if ar.ErrorCode != 0 {
			why := ""
			if ar.ErrorMessage != nil {
				why = ": " + *ar.ErrorMessage
			}
			return 0, fmt.Errorf("%w: %s at %s: %v%s", ErrAuth, mech.Name(), addr, kerr.ErrorForCode(ar.ErrorCode), why)
		}
		lifetime = time.Duration(ar.SessionLifetimeMillis) * time.Millisecond
		msg = nil
		if !done {
			if done, msg, err = session.Challenge(ar.SASLAuthBytes); err != nil {
				return 0, fmt.Errorf("%w: %v", ErrAuth, err)
			}
		}
	}
	return lifetime, nil
}
