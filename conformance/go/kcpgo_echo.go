// kcpgo_echo is a plain KCP echo server on kcp-go, for `kcp-conformance
// peer` (scripts/conformance-kcp-go.sh builds and runs it): plain mode (no
// encryption, no FEC), message mode, the usual fast settings
// (SetNoDelay(1, 10, 2, 1)), every other setting kcp-go's default (windows
// 32/32). Each session echoes what it reads, as it reads it.
//
//	kcpgo_echo [addr] [seconds]   prints "kcpgo_echo: listening on <ip:port>"
//
// Build (Debian packages golang-go and golang-github-xtaci-kcp-dev):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o target/kcpgo-echo conformance/go/kcpgo_echo.go
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"

	kcp "github.com/xtaci/kcp-go"
)

func main() {
	addr, secs := "127.0.0.1:0", 120
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil {
			fmt.Fprintln(os.Stderr, "usage: kcpgo_echo [addr] [seconds]")
			os.Exit(2)
		}
		secs = n
	}
	l, err := kcp.ListenWithOptions(addr, nil, 0, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kcpgo_echo: listen:", err)
		os.Exit(1)
	}
	fmt.Printf("kcpgo_echo: listening on %s\n", l.Addr())
	time.AfterFunc(time.Duration(secs)*time.Second, func() {
		fmt.Printf("kcpgo_echo: %d s are up\n", secs)
		os.Exit(0)
	})
	for {
		s, err := l.AcceptKCP()
		if err != nil {
			fmt.Fprintln(os.Stderr, "kcpgo_echo: accept:", err)
			os.Exit(1)
		}
		s.SetNoDelay(1, 10, 2, 1)
		fmt.Printf("kcpgo_echo: %s conv %#x\n", s.RemoteAddr(), s.GetConv())
		go func() {
			buf := make([]byte, 1<<20)
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
