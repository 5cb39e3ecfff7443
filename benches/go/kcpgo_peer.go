// kcpgo_peer is kcp-go's side of the process-to-process benchmark driven by
// scripts/bench-async.py: the same modes and output as
// benches/examples/async_peer.rs, for kcp-go in plain mode (no encryption,
// no FEC), configured as its deployments (kcptun) configure it: stream
// mode, write delay off, ACK no-delay on, 4 MB socket buffers, and every
// setting applied to accepted sessions too.
//
//	kcpgo_peer serve                      prints "ADDR <ip:port>", echoes until killed
//	kcpgo_peer client <addr> bulk <bytes> echo <bytes>, every byte checked
//	kcpgo_peer client <addr> rtt <count>  64-byte messages at 1,000/s
//	kcpgo_peer client <addr> soak <secs>  fast writer, slow reader: longest gap
//
// Build (Debian packages golang-go and golang-github-xtaci-kcp-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/kcpgo-peer benches/go/kcpgo_peer.go
package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

const socketBuffer = 4 << 20

// Every test stream is a sequence of 8-byte little-endian words, word w
// being w*patternMul (odd, so no two positions hold the same word); filled
// and checked a word at a time, as the Rust peer does, so the harness costs
// little next to the transport it measures.
const patternMul = 0x9e3779b97f4a7c15

func pattern(i uint64) byte { return byte((i / 8 * patternMul) >> (8 * (i % 8))) }

func fill(buf []byte, off uint64) {
	k := uint64(0)
	for ; k < uint64(len(buf)) && (off+k)%8 != 0; k++ {
		buf[k] = pattern(off + k)
	}
	for ; k+8 <= uint64(len(buf)); k += 8 {
		binary.LittleEndian.PutUint64(buf[k:], (off+k)/8*patternMul)
	}
	for ; k < uint64(len(buf)); k++ {
		buf[k] = pattern(off + k)
	}
}

func fail(what string, err interface{}) {
	fmt.Fprintln(os.Stderr, "kcpgo_peer:", what+":", err)
	os.Exit(2)
}

func check(buf []byte, off uint64) {
	diff := uint64(0)
	k := uint64(0)
	for ; k < uint64(len(buf)) && (off+k)%8 != 0; k++ {
		diff |= uint64(buf[k] ^ pattern(off+k))
	}
	for ; k+8 <= uint64(len(buf)); k += 8 {
		diff |= binary.LittleEndian.Uint64(buf[k:]) ^ (off+k)/8*patternMul
	}
	for ; k < uint64(len(buf)); k++ {
		diff |= uint64(buf[k] ^ pattern(off+k))
	}
	if diff == 0 {
		return
	}
	for k, b := range buf {
		if b != pattern(off+uint64(k)) {
			fmt.Fprintln(os.Stderr, "corrupt byte at offset", off+uint64(k))
			os.Exit(3)
		}
	}
}

// configure applies the settings every implementation in the benchmark uses.
func configure(s *kcp.UDPSession) {
	s.SetStreamMode(true)
	s.SetWriteDelay(false)
	s.SetNoDelay(1, 10, 2, 1)
	s.SetWindowSize(1024, 1024)
	s.SetMtu(1400)
	s.SetACKNoDelay(true)
}

func serve() {
	l, err := kcp.ListenWithOptions("127.0.0.1:0", nil, 0, 0)
	if err != nil {
		fail("listen", err)
	}
	l.SetReadBuffer(socketBuffer)
	l.SetWriteBuffer(socketBuffer)
	fmt.Printf("ADDR %s\n", l.Addr())
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			fail("accept", err)
		}
		configure(s)
		go func() {
			buf := make([]byte, 64*1024)
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
	}
}

func bulk(c *kcp.UDPSession, total uint64) string {
	start := time.Now()
	go func() {
		chunk := make([]byte, 64*1024)
		for off := uint64(0); off < total; {
			n := uint64(len(chunk))
			if total-off < n {
				n = total - off
			}
			fill(chunk[:n], off)
			if _, err := c.Write(chunk[:n]); err != nil {
				fail("write", err)
			}
			off += n
		}
	}()
	buf := make([]byte, 64*1024)
	for got := uint64(0); got < total; {
		n, err := c.Read(buf)
		if err != nil {
			fail("read", err)
		}
		check(buf[:n], got)
		got += uint64(n)
	}
	return fmt.Sprintf("{\"bytes\": %d, \"secs\": %.6f}", total, time.Since(start).Seconds())
}

func rtt(c *kcp.UDPSession, count int) string {
	epoch := time.Now()
	go func() {
		msg := make([]byte, 64)
		for i := 0; i < count; i++ {
			time.Sleep(time.Until(epoch.Add(time.Duration(i) * time.Millisecond)))
			binary.LittleEndian.PutUint64(msg[:8], uint64(time.Since(epoch).Nanoseconds()))
			binary.LittleEndian.PutUint64(msg[8:16], uint64(i))
			if _, err := c.Write(msg); err != nil {
				fail("write", err)
			}
		}
	}()
	warmup := count / 10
	samples := make([]float64, 0, count)
	msg := make([]byte, 64)
	for i := 0; i < count; i++ {
		if _, err := io.ReadFull(c, msg); err != nil {
			fail("read", err)
		}
		now := uint64(time.Since(epoch).Nanoseconds())
		if idx := binary.LittleEndian.Uint64(msg[8:16]); idx != uint64(i) {
			fail("rtt", fmt.Sprintf("echo %d arrived as number %d", idx, i))
		}
		if i >= warmup {
			samples = append(samples, float64(now-binary.LittleEndian.Uint64(msg[:8]))/1e3)
		}
	}
	sort.Float64s(samples)
	at := func(q float64) float64 { return samples[int(float64(len(samples)-1)*q+0.5)] }
	return fmt.Sprintf("{\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, \"samples\": %d}",
		at(0.5), at(0.99), samples[len(samples)-1], len(samples))
}

func soak(c *kcp.UDPSession, secs float64) string {
	until := time.Now().Add(time.Duration(secs * float64(time.Second)))
	go func() {
		chunk := make([]byte, 64*1024)
		for off := uint64(0); time.Now().Before(until); off += uint64(len(chunk)) {
			fill(chunk, off)
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 8*1024)
	got := uint64(0)
	last := time.Now()
	longest := time.Duration(0)
	for time.Now().Before(until) {
		time.Sleep(2 * time.Millisecond)
		c.SetReadDeadline(until)
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		check(buf[:n], got)
		got += uint64(n)
		now := time.Now()
		if now.Sub(last) > longest {
			longest = now.Sub(last)
		}
		last = now
	}
	end := time.Now()
	if end.After(until) {
		end = until
	}
	if end.Sub(last) > longest {
		longest = end.Sub(last)
	}
	return fmt.Sprintf("{\"secs\": %g, \"bytes\": %d, \"longest_gap_ms\": %.1f}",
		secs, got, float64(longest.Nanoseconds())/1e6)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		serve()
		return
	}
	if len(os.Args) < 5 || os.Args[1] != "client" {
		fail("usage", "see the header of benches/go/kcpgo_peer.go")
	}
	c, err := kcp.DialWithOptions(os.Args[2], nil, 0, 0)
	if err != nil {
		fail("dial", err)
	}
	configure(c)
	c.SetReadBuffer(socketBuffer)
	c.SetWriteBuffer(socketBuffer)
	done := make(chan string, 1)
	go func() {
		switch os.Args[3] {
		case "bulk":
			n, _ := strconv.ParseUint(os.Args[4], 10, 64)
			done <- bulk(c, n)
		case "rtt":
			n, _ := strconv.Atoi(os.Args[4])
			done <- rtt(c, n)
		case "soak":
			n, _ := strconv.ParseFloat(os.Args[4], 64)
			done <- soak(c, n)
		default:
			fail("unknown test", os.Args[3])
		}
	}()
	select {
	case out := <-done:
		fmt.Println(out)
	case <-time.After(150 * time.Second):
		fail("client", "time limit exceeded")
	}
}
