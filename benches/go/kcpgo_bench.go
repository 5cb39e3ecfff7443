// kcpgo_bench measures kcp-go (plain mode: no encryption, no FEC) on
// loopback with the same settings as benches/benches/async_loopback.rs,
// which runs this program and reads the one JSON line it prints. With the
// argument "eager" it also turns on kcp-go's own low-latency option,
// SetACKNoDelay (acknowledge on input instead of at the next tick).
//
// Build (Debian packages golang-go and golang-github-xtaci-kcp-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/kcpgo-bench benches/go/kcpgo_bench.go
package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

const (
	bulkBytes  = 32 << 20
	message    = 8 * 1024
	rttWarmup  = 200
	rttSamples = 3000
)

func pattern(i int) byte { return byte((i * 31) ^ (i >> 11)) }

var eager = len(os.Args) > 1 && os.Args[1] == "eager"

// configure applies the settings shared with the Rust bench.
func configure(s *kcp.UDPSession) {
	s.SetACKNoDelay(eager)
	s.SetStreamMode(false)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetMtu(1400)
}

func listen() *kcp.Listener {
	l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		fail(err)
	}
	return l
}

func dial(l *kcp.Listener) *kcp.UDPSession {
	c, err := kcp.DialWithOptions(l.Addr().String(), nil, 0, 0)
	if err != nil {
		fail(err)
	}
	configure(c)
	return c
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kcpgo_bench:", err)
	os.Exit(1)
}

func bulk() (float64, float64) {
	l := listen()
	defer l.Close()
	done := make(chan error, 1)
	go func() {
		s, err := l.AcceptKCP()
		if err != nil {
			done <- err
			return
		}
		configure(s)
		buf := make([]byte, 1<<20)
		got := 0
		for got < bulkBytes {
			n, err := s.Read(buf)
			if err != nil {
				done <- err
				return
			}
			for i := 0; i < n; i++ {
				if buf[i] != pattern(got+i) {
					done <- fmt.Errorf("corrupt byte at %d", got+i)
					return
				}
			}
			got += n
		}
		_, err = s.Write([]byte("!"))
		done <- err
		io.Copy(io.Discard, s)
	}()
	c := dial(l)
	defer c.Close()
	chunk := make([]byte, message)
	start := time.Now()
	for off := 0; off < bulkBytes; off += message {
		for i := range chunk {
			chunk[i] = pattern(off + i)
		}
		if _, err := c.Write(chunk); err != nil {
			fail(err)
		}
	}
	answer := make([]byte, 16)
	if _, err := c.Read(answer); err != nil {
		fail(err)
	}
	secs := time.Since(start).Seconds()
	if err := <-done; err != nil {
		fail(err)
	}
	return float64(bulkBytes) / secs / 1e6, secs
}

func rtt() (p50, p99, mean float64) {
	l := listen()
	defer l.Close()
	go func() {
		s, err := l.AcceptKCP()
		if err != nil {
			return
		}
		configure(s)
		buf := make([]byte, 4096)
		for {
			n, err := s.Read(buf)
			if err != nil {
				return
			}
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
	}()
	c := dial(l)
	defer c.Close()
	request := make([]byte, 64)
	echo := make([]byte, 4096)
	samples := make([]float64, 0, rttSamples)
	for i := 0; i < rttWarmup+rttSamples; i++ {
		t := time.Now()
		if _, err := c.Write(request); err != nil {
			fail(err)
		}
		if n, err := c.Read(echo); err != nil || n != len(request) {
			fail(fmt.Errorf("echo: %d bytes, %v", n, err))
		}
		if i >= rttWarmup {
			samples = append(samples, float64(time.Since(t).Nanoseconds())/1e3)
		}
	}
	sort.Float64s(samples)
	at := func(q float64) float64 { return samples[int(float64(len(samples)-1)*q+0.5)] }
	sum := 0.0
	for _, s := range samples {
		sum += s
	}
	return at(0.50), at(0.99), sum / float64(len(samples))
}

func main() {
	mbps, secs := bulk()
	p50, p99, mean := rtt()
	fmt.Printf("{\"bulk\": {\"mb_per_s\": %.3f, \"bytes\": %d, \"secs\": %.4f}, "+
		"\"rtt\": {\"p50_us\": %.1f, \"p99_us\": %.1f, \"mean_us\": %.1f, \"samples\": %d}}\n",
		mbps, bulkBytes, secs, p50, p99, mean, rttSamples)
}
