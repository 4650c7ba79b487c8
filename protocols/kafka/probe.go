package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ambassador-proxy/ambassador/config"
	"github.com/ambassador-proxy/ambassador/health"
	"github.com/ambassador-proxy/ambassador/protocols/kafka/wire"
)

// Probe returns the health probe of a Kafka broker: an ApiVersions round
// trip on a fresh connection (over TLS when the brokers want it; brokers
// answer ApiVersions before SASL). A broker that answers, even with
// UNSUPPORTED_VERSION (an old broker), is alive.
func Probe(cfg *config.Config) health.ProbeFunc {
	sec, serr := newSecurity(&cfg.Kafka)
	return func(ctx context.Context, addr string) error {
		if serr != nil {
			return serr
		}
		conn, br, _, err := sec.dial(ctx, addr, cfg.Limits.ConnectionTimeout.D()+time.Second, false)
		if err != nil {
			return err
		}
		defer conn.Close()
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		} else {
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		}
		stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
		defer stop()
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = "ambassador", "1"
		id := "ambassador-probe"
		if _, err := conn.Write(wire.AppendRequest(nil, 1, &id, req)); err != nil {
			return fmt.Errorf("kafka probe: %w", err)
		}
		frame, err := wire.ReadFrame(br, 1<<20, nil)
		if err != nil {
			return fmt.Errorf("kafka probe: %w", err)
		}
		resp, err := wire.DecodeResponse(18, 3, frame)
		if err != nil {
			// An UNSUPPORTED_VERSION answer comes as v0.
			if resp0, err0 := wire.DecodeResponse(18, 0, frame); err0 == nil {
				resp, err = resp0, nil
			} else {
				return fmt.Errorf("kafka probe: %w", err)
			}
		}
		if code := resp.(*kmsg.ApiVersionsResponse).ErrorCode; code != 0 && code != kerr.UnsupportedVersion.Code {
			return fmt.Errorf("kafka probe: ApiVersions: %w", kerr.ErrorForCode(code))
		}
		return nil
	}
}
