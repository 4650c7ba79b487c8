package resp

import (
	"strconv"
	"strings"
)

// AppendError appends an error reply. The message starts with its code
// ("ERR ...", "CROSSSLOT ..."); line breaks in it are replaced by spaces.
func AppendError(dst []byte, msg string) []byte {
	dst = append(dst, '-')
	if strings.ContainsAny(msg, "\r\n") {
		msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	}
	dst = append(dst, msg...)
	return append(dst, '\r', '\n')
}

// AppendSimple appends a simple string reply.
func AppendSimple(dst []byte, s string) []byte {
	dst = append(dst, '+')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendOK appends +OK.
func AppendOK(dst []byte) []byte { return append(dst, "+OK\r\n"...) }

// AppendInt appends an integer reply.
func AppendInt(dst []byte, n int64) []byte {
	dst = append(dst, ':')
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}

// AppendBulk appends a bulk string reply (or argument).
func AppendBulk(dst, b []byte) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(b)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, b...)
	return append(dst, '\r', '\n')
}

// AppendBulkString appends a bulk string reply.
func AppendBulkString(dst []byte, s string) []byte {
	dst = append(dst, '$')
	dst = strconv.AppendInt(dst, int64(len(s)), 10)
	dst = append(dst, '\r', '\n')
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendNull appends the null of the protocol: $-1 for RESP2, _ for RESP3.
func AppendNull(dst []byte, proto int) []byte {
	if proto >= 3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "$-1\r\n"...)
}

// AppendNullArray appends a null array: *-1 for RESP2, _ for RESP3.
func AppendNullArray(dst []byte, proto int) []byte {
	if proto >= 3 {
		return append(dst, "_\r\n"...)
	}
	return append(dst, "*-1\r\n"...)
}

func appendHeader(dst []byte, t byte, n int) []byte {
	dst = append(dst, t)
	dst = strconv.AppendInt(dst, int64(n), 10)
	return append(dst, '\r', '\n')
}

// AppendArray appends an array header of n elements.
func AppendArray(dst []byte, n int) []byte { return appendHeader(dst, '*', n) }

// AppendMap appends a map header of n pairs: '%' for RESP3, an array of
// 2n elements for RESP2.
func AppendMap(dst []byte, n, proto int) []byte {
	if proto >= 3 {
		return appendHeader(dst, '%', n)
	}
	return appendHeader(dst, '*', 2*n)
}

// AppendSet appends a set header: '~' for RESP3, an array for RESP2.
func AppendSet(dst []byte, n, proto int) []byte {
	if proto >= 3 {
		return appendHeader(dst, '~', n)
	}
	return appendHeader(dst, '*', n)
}

// AppendPush appends an out-of-band push header: '>' for RESP3, an array
// for RESP2 (Pub/Sub messages).
func AppendPush(dst []byte, n, proto int) []byte {
	if proto >= 3 {
		return appendHeader(dst, '>', n)
	}
	return appendHeader(dst, '*', n)
}

// AppendVerbatim appends a verbatim string ("txt") for RESP3, a bulk
// string for RESP2.
func AppendVerbatim(dst []byte, s string, proto int) []byte {
	if proto < 3 {
		return AppendBulkString(dst, s)
	}
	dst = append(dst, '=')
	dst = strconv.AppendInt(dst, int64(len(s)+4), 10)
	dst = append(dst, "\r\ntxt:"...)
	dst = append(dst, s...)
	return append(dst, '\r', '\n')
}

// AppendCommand appends a command as a multibulk request.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = AppendArray(dst, len(args))
	for _, a := range args {
		dst = AppendBulk(dst, a)
	}
	return dst
}

// AppendCommandStrings appends a command given as strings.
func AppendCommandStrings(dst []byte, args ...string) []byte {
	dst = AppendArray(dst, len(args))
	for _, a := range args {
		dst = AppendBulkString(dst, a)
	}
	return dst
}
