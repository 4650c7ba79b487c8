//go:build !kafkapoison

package kafka

const poisonFrames = false
