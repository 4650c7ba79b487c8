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
	return resp, setErrors(rv, code) > 0
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
		var src reflect.Value
		for _, n := range names {
			if s := req.FieldByName(n); s.IsValid() && s.Kind() == reflect.Slice && s.Len() > 0 {
				src = s
				break
			}
		}
		if !src.IsValid() {
			continue
		}
		out := reflect.MakeSlice(f.Type, src.Len(), src.Len())
		for j := 0; j < src.Len(); j++ {
			el := out.Index(j)
			if d := el.Addr().MethodByName("Default"); d.IsValid() {
				d.Call(nil)
			}
			se := src.Index(j)
			if se.Kind() == reflect.Pointer {
				se = se.Elem()
			}
			if se.Kind() == reflect.Struct {
				copyIdentity(se, el)
				mirror(se, el)
				continue
			}
			for _, n := range scalarTarget {
				if t := el.FieldByName(n); t.IsValid() && t.Type() == se.Type() {
					t.Set(se)
					break
				} else if t.IsValid() && t.Kind() == reflect.Pointer && t.Type().Elem() == se.Type() {
					p := reflect.New(se.Type())
					p.Elem().Set(se)
					t.Set(p)
					break
				}
			}
		}
		fv.Set(out)
	}
}

func copyIdentity(src, dst reflect.Value) {
	dt := dst.Type()
	for i := 0; i < dt.NumField(); i++ {
		name := dt.Field(i).Name
		if !identity[name] {
			continue
		}
		s := src.FieldByName(name)
		if s.IsValid() && s.Type() == dt.Field(i).Type {
			dst.Field(i).Set(s)
		}
	}
}

// setErrors writes code into every ErrorCode field under v and returns how
// many it set.
func setErrors(v reflect.Value, code int16) int {
	n := 0
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				v.Field(i).SetInt(int64(code))
				n++
				continue
			}
			n += setErrors(v.Field(i), code)
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			n += setErrors(v.Index(i), code)
		}
	}
	return n
}

// errorCodes calls fn for every ErrorCode field in a response, top-level
// and nested (used off the hot path, to notice NOT_COORDINATOR and the
// like).
func errorCodes(resp kmsg.Response, fn func(int16)) {
	walkErrors(reflect.ValueOf(resp).Elem(), fn)
}

func walkErrors(v reflect.Value, fn func(int16)) {
	switch v.Kind() {
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Name == "ErrorCode" && f.Type.Kind() == reflect.Int16 {
				fn(int16(v.Field(i).Int()))
				continue
			}
			if k := f.Type.Kind(); k == reflect.Struct || k == reflect.Slice {
				walkErrors(v.Field(i), fn)
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Struct {
			return
		}
		for i := 0; i < v.Len(); i++ {
			walkErrors(v.Index(i), fn)
		}
	}
}

// setErrorMessages sets every ErrorMessage field under resp to msg.
func setErrorMessages(resp kmsg.Response, msg *string) {
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			t := v.Type()
			for i := 0; i < t.NumField(); i++ {
				f := t.Field(i)
				if !f.IsExported() {
					continue
				}
				if f.Name == "ErrorMessage" && f.Type == reflect.TypeOf(msg) {
					v.Field(i).Set(reflect.ValueOf(msg))
					continue
				}
				walk(v.Field(i))
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(v.Index(i))
			}
		}
	}
	walk(reflect.ValueOf(resp).Elem())
}
