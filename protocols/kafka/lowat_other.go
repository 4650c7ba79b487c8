//go:build !linux

package kafka

import "net"

func newLowatReader(c net.Conn) (r interface{ Read([]byte) (int, error) }) { return c }
