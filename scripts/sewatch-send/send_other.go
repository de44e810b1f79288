//go:build !linux

package main

import (
	"errors"
	"time"
)

type result struct {
	sent, failed            int
	elapsed                 time.Duration
	kernelTx, kernelDropped uint64
}

func send(string, *frames, string, float64, int, int) (result, error) {
	return result{}, errors.New("AF_PACKET sockets are Linux only")
}
