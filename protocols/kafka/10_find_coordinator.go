package kafka

import (
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleFindCoordinator answers with the ambassador for every key whose
// real coordinator the ambassador could find (asking the backend, or its
// cache), and with the backend's error for the others. v4+ batches keys.
func (c *clientConn) handleFindCoordinator(r *request) {
	req := r.req.(*kmsg.FindCoordinatorRequest)
	keys := req.CoordinatorKeys
	if r.h.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	// Key types: group (0), transaction (1), share group (2, from v6). The
	// ambassador's own look-up uses the newest version, so a type the
	// client's version does not have is refused here, as a broker would.
	valid := req.CoordinatorType == 0 || req.CoordinatorType == 1 || req.CoordinatorType == 2 && r.h.Version >= 6
	c.async(func() {
		var res map[string]coordResult
		if valid {
			res = c.f.be.coordinators(c.ctx, req.CoordinatorType, keys)
		} else {
			res = map[string]coordResult{}
			msg := "coordinator type " + strconv.Itoa(int(req.CoordinatorType)) + " is not valid at FindCoordinator v" + strconv.Itoa(int(r.h.Version))
			for _, k := range keys {
				res[k] = coordResult{code: kerr.InvalidRequest.Code, msg: &msg}
			}
		}
		st := c.f.settings()
		resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
		if r.h.Version < 4 {
			x := res[req.CoordinatorKey]
			resp.ErrorCode, resp.ErrorMessage = x.code, x.msg
			if x.code == 0 {
				resp.NodeID, resp.Host, resp.Port = AmbassadorNodeID, st.host, st.port
			} else {
				resp.NodeID = -1
			}
		} else {
			for _, k := range keys {
				x := res[k]
				rc := kmsg.NewFindCoordinatorResponseCoordinator()
				rc.Key, rc.ErrorCode, rc.ErrorMessage = k, x.code, x.msg
				rc.NodeID = -1
				if x.code == 0 {
					rc.NodeID, rc.Host, rc.Port = AmbassadorNodeID, st.host, st.port
				}
				resp.Coordinators = append(resp.Coordinators, rc)
			}
		}
		r.respond(resp)
	})
}
