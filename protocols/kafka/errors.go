package kafka

import (
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// errorResponse builds the response to req with code in every error
// field: the response mirrors the request's topics, partitions, groups or
// resources (the names kmsg gives them), so that a client sees the error
// on each item it asked about. It reports false when the response type has
// no error field at all (then only closing the connection tells the
// client).
func errorResponse(req kmsg.Request, code int16) (kmsg.Response, bool) {
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	rv := reflect.ValueOf(resp).Elem()
	mirror(reflect.ValueOf(req).Elem(), rv)
	if setErrors(rv, code) == 0 {
		return resp, false
	}
	// Some error fields exist only from some version on (DescribeLogDirs
	// has its top-level one from v3): count what the wire carries at the
	// request's version, or a client would read an empty success.
	back := req.ResponseKind()
	back.SetVersion(req.GetVersion())
	if err := back.ReadFrom(resp.AppendTo(nil)); err != nil {
		return resp, false
	}
	carried := false
	errorCodes(back, func(c int16) { carried = carried || c == code })
	return resp, carried
}

// respAliases names request fields that carry the items of a response
// field of another name.
var respAliases = map[string][]string{
	"Coordinators":      {"CoordinatorKeys"},
	"Results":           {"Creations", "Filters", "Entries", "Deletions", "Upsertions"},
	"TransactionStates": {"TransactionalIDs"},
	"Topics":            {"Topics", "TopicNames"},
	"Groups":            {"Groups"},
	"Partitions":        {"Partitions"},
	"Resources":         {"Resources"},
	"Members":           {"Members"},
	"Transactions":      {"Transactions"},
}

// respConcat: response fields whose items come from every aliased request
// field in turn (AlterUserSCRAMCredentials answers its deletions and its
// upsertions in one Results list), not only the first that has items.
var respConcat = map[string]bool{"Results": true}

// identityFrom: response identity fields filled from a request field of
// another name.
var identityFrom = map[string]string{"User": "Name"}

// identity fields are copied from a request item to its response item.
var identity = map[string]bool{
	"Topic": true, "TopicID": true, "Partition": true, "Group": true, "Key": true,
	"ResourceType": true, "ResourceName": true, "Name": true, "TransactionalID": true,
	"MemberID": true, "GroupInstanceID": true, "ProducerID": true, "Index": true,
	"PartitionIndex": true,
}

// scalarTarget is the response field a bare request item (a string or an
// int32 in a list) fills.
var scalarTarget = []string{"Topic", "Group", "Key", "TransactionalID", "Name", "Partition"}

func mirror(req, resp reflect.Value) {
	rt := resp.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		fv := resp.Field(i)
		if f.Type.Kind() != reflect.Slice || f.Type.Elem().Kind() != reflect.Struct {
			continue
		}
		names := respAliases[f.Name]
		if names == nil {
			names = []string{f.Name}
		}
		var srcs []reflect.Value
		total := 0
		for _, n := range names {
			if s := req.FieldByName(n); s.IsValid() && s.Kind() == reflect.Slice && s.Len() > 0 {
				srcs = append(srcs, s)
				total += s.Len()
				if !respConcat[f.Name] {
					break
				}
			}
		}
		if len(srcs) == 0 {
			continue
		}
		out := reflect.MakeSlice(f.Type, total, total)
		j := 0
		for _, src := range srcs {
			for k := 0; k < src.Len(); k, j = k+1, j+1 {
				el := out.Index(j)
				if d := el.Addr().MethodByName("Default"); d.IsValid() {
					d.Call(nil)
				}
				mirrorItem(src.Index(k), el)
			}
		}
		fv.Set(out)
	}
}

// mirrorItem fills a response item from its request item.
func mirrorItem(se, el reflect.Value) {
	if se.Kind() == reflect.Pointer {
		se = se.Elem()
	}
	if se.Kind() == reflect.Struct {
		copyIdentity(se, el)
		mirror(se, el)
		return
	}
	for _, n := range scalarTarget {
		if t := el.FieldByName(n); t.IsValid() && t.Type() == se.Type() {
			t.Set(se)
			return
		} else if t.IsValid() && t.Kind() == reflect.Pointer && t.Type().Elem() == se.Type() {
			p := reflect.New(se.Type())
			p.Elem().Set(se)
			t.Set(p)
			return
		}
	}
}

func copyIdentity(src, dst reflect.Value) {
	dt := dst.Type()
	for i := 0; i < dt.NumField(); i++ {
		name := dt.Field(i).Name
		from, renamed := identityFrom[name]
		if !identity[name] && !renamed {
			continue
		}
		if !renamed {
			from = name
		}
		s := src.FieldByName(from)
		if s.IsValid() && s.Type() == dt.Field(i).Type {
			dst.Field(i).Set(s)
		}
	}
}

// setErrors writes code into every ErrorCode field under v and returns how
// many it set.
func setErrors(v reflect.Value, code int16) int {
	n := 0
	eachField(v, "ErrorCode", func(f reflect.Value) {
		if f.Kind() == reflect.Int16 {
			f.SetInt(int64(code))
			n++
		}
	})
	return n
}

// errorCodes calls fn for every ErrorCode field in a response, top-level
// and nested (used off the hot path, to notice NOT_COORDINATOR and the
// like).
func errorCodes(resp kmsg.Response, fn func(int16)) {
	eachField(reflect.ValueOf(resp).Elem(), "ErrorCode", func(f reflect.Value) {
		if f.Kind() == reflect.Int16 {
			fn(int16(f.Int()))
		}
	})
}

// setErrorMessages sets every ErrorMessage field under resp to msg.
func setErrorMessages(resp kmsg.Response, msg *string) {
	eachField(reflect.ValueOf(resp).Elem(), "ErrorMessage", func(f reflect.Value) {
		if f.Type() == reflect.TypeOf(msg) {
			f.Set(reflect.ValueOf(msg))
		}
	})
}

// eachField calls fn for every exported struct field called name under v,
// through nested structs and slices of structs.
func eachField(v reflect.Value, name string, fn func(reflect.Value)) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			switch {
			case !f.IsExported():
			case f.Name == name:
				fn(v.Field(i))
			default:
				eachField(v.Field(i), name, fn)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		for i := 0; i < v.Len(); i++ {
			eachField(v.Index(i), name, fn)
		}
	}
}
