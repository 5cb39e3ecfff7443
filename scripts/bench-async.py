"""Process-to-process benchmark of the async layer on 127.0.0.1.

Every measurement starts a fresh server process and a client process of the
same implementation (benches/examples/async_peer.rs, benches/go/kcpgo_peer.go),
takes the client's one JSON line, and reads both processes' CPU time from
their rusage. Implementations run alternately, round after round; the report
gives medians over the rounds. Writes target/bench-async.json and the section
of BENCHMARKS.md between the async markers.

Usage: bench-async.py [--rounds N] [--soak SECS] [--rtt COUNT] [--bytes N]
                      [--only IMPL,...] [--no-write]
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# BENCH_ASYNC_PEER runs another build of the Rust peer (e.g. before a change).
PEER = os.environ.get("BENCH_ASYNC_PEER") or os.path.join(ROOT, "target", "bench-noabi", "examples", "async_peer")
GO_PEER = os.path.join(ROOT, "target", "kcpgo-peer")
BEGIN, END = "<!-- async:begin -->", "<!-- async:end -->"

NAMES = {
    "ours": "ikcp `KcpStream` (out of the box: only the KCP knobs set)",
    # Not in the default set: what the adaptive in-flight limit does
    # (--only ours,ours_window).
    "ours_window": "ikcp `KcpStream`, `adaptive_inflight(false)` (the window alone)",
    "kcp_go": "kcp-go 5.6.1, plain mode (4 MB socket buffers, as kcptun)",
    "tokio_kcp": "tokio_kcp 0.9.8 (flush on write and after input, 4 MB socket buffers)",
    "tcp": "tokio `TcpStream` (TCP_NODELAY)",
}
UDP = {
    "udp": "raw UDP, one `sendto` per datagram",
    "udp-mmsg": "raw UDP, `sendmmsg` 32 per call",
    "udp-gso": "raw UDP, GSO `sendmsg` 46 per call",
    "udp-echo": "raw UDP echo: GSO trains sent back as received (GRO), no protocol",
}
# One-way blasts; `udp-echo` echoes as the bulk test does.
BLASTS = ("udp", "udp-mmsg", "udp-gso")


def raw_test(impl):
    """The test a raw-UDP row runs."""
    return "blast" if impl in BLASTS else "bulk"


def command(impl, *args):
    if impl == "kcp_go":
        return [GO_PEER, *args]
    if args[0] == "serve":
        return [PEER, "serve", impl]
    return [PEER, "client", impl, *args[1:]]


def cpu(ru):
    return ru.ru_utime + ru.ru_stime


def measure(impl, test, arg, limit):
    """One server, one client; the client's JSON plus both CPU times."""
    server = subprocess.Popen(command(impl, "serve"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline().split()
        if len(line) != 2 or line[0] != "ADDR":
            raise RuntimeError(f"{impl} server did not announce its address: {line}")
        with tempfile.TemporaryFile(mode="w+") as err:
            client = subprocess.Popen(command(impl, "client", line[1], test, str(arg)), stdout=subprocess.PIPE,
                                      stderr=err, text=True)
            # Reaped with wait4 (not Popen.wait) to get the client's rusage.
            killer = threading.Timer(limit, client.kill)
            killer.start()
            out = client.stdout.read()
            _, status, client_ru = os.wait4(client.pid, 0)
            client.returncode = os.waitstatus_to_exitcode(status)
            killer.cancel()
            client.stdout.close()
            if client.returncode != 0:
                err.seek(0)
                raise RuntimeError(f"{impl} {test} failed ({client.returncode}): {err.read().strip()}")
        result = json.loads(out.strip().splitlines()[-1])
    finally:
        # Its rusage covers its whole life: this measurement only.
        server.kill()
        _, status, server_ru = os.wait4(server.pid, 0)
        server.returncode = os.waitstatus_to_exitcode(status)
        server.stdout.close()
    result["client_cpu"] = cpu(client_ru)
    result["server_cpu"] = cpu(server_ru)
    return result


def median(values):
    values = [v for v in values if v == v]
    return statistics.median(values) if values else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--soak", type=float, default=60.0)
    ap.add_argument("--rtt", type=int, default=5000, help="messages at 1,000/s")
    ap.add_argument("--bytes", type=int, default=32 << 20)
    ap.add_argument("--only", default="ours,kcp_go,tokio_kcp,tcp")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    impls = [i for i in args.only.split(",") if i]
    if "kcp_go" in impls and not os.path.exists(GO_PEER):
        print("kcp-go peer not built; left out", file=sys.stderr)
        impls.remove("kcp_go")
    tests = [("bulk", args.bytes), ("rtt", args.rtt), ("soak", args.soak)]
    raw = {}  # (impl, test) -> [result]
    for r in range(args.rounds):
        # Rotating the order spreads any drift of the machine over everyone.
        order = impls[r % len(impls):] + impls[:r % len(impls)]
        for test, arg in tests:
            for impl in order:
                limit = (arg + 60) if test == "soak" else 180
                res = measure(impl, test, arg, limit)
                raw.setdefault((impl, test), []).append(res)
                print(f"round {r + 1} {impl} {test}: {json.dumps(res)}", flush=True)
        for impl in UDP:
            test = raw_test(impl)
            res = measure(impl, test, args.bytes, 120)
            raw.setdefault((impl, test), []).append(res)
            print(f"round {r + 1} {impl} {test}: {json.dumps(res)}", flush=True)

    summary = {"rounds": args.rounds, "bytes": args.bytes, "rtt_messages": args.rtt, "soak_secs": args.soak}
    for impl in impls:
        b = raw[(impl, "bulk")]
        mb = args.bytes / 1e6
        summary[impl] = {
            "bulk_mb_per_s": median([mb / x["secs"] for x in b]),
            "cpu_s_per_mb": median([(x["client_cpu"] + x["server_cpu"]) / mb for x in b]),
            "rtt_p50_us": median([x["p50_us"] for x in raw[(impl, "rtt")]]),
            "rtt_p99_us": median([x["p99_us"] for x in raw[(impl, "rtt")]]),
            "soak_longest_gap_ms": median([x["longest_gap_ms"] for x in raw[(impl, "soak")]]),
            "soak_worst_gap_ms": max(x["longest_gap_ms"] for x in raw[(impl, "soak")]),
            "soak_mb_per_s": median([x["bytes"] / 1e6 / x["secs"] for x in raw[(impl, "soak")]]),
        }
    for impl in UDP:
        b = raw[(impl, raw_test(impl))]
        summary[impl] = {
            "mb_per_s": median([x["bytes"] / 1e6 / x["secs"] for x in b if x["secs"] > 0]),
            "delivered": median([x["bytes"] / x["bytes_sent"] for x in b]),
        }
    summary["raw"] = {f"{i}/{t}": v for (i, t), v in raw.items()}
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    with open(os.path.join(ROOT, "target", "bench-async.json"), "w") as f:
        json.dump(summary, f, indent=1)
    section = report(summary, impls, args)
    print(section)
    if not args.no_write:
        write_section(section)


def report(s, impls, args):
    ceiling = max(s[i]["mb_per_s"] for i in UDP)
    one_way = max(s[i]["mb_per_s"] for i in BLASTS)
    soak = "s" if args.soak != 1 else ""
    lines = [
        BEGIN,
        "### Async layer, process to process",
        "",
        "Client and server in two processes on 127.0.0.1, a fresh pair for every measurement, the",
        f"implementations alternating; medians of {args.rounds} round{'s' if args.rounds != 1 else ''}"
        " (`bash scripts/bench-async.sh`). Every KCP",
        "implementation runs the settings of kcp-go deployments: stream mode, MTU 1400, windows",
        "1024/1024, nodelay 1, interval 10 ms, fast resend 2, congestion window off. Peers:",
        "`benches/examples/async_peer.rs`, `benches/go/kcpgo_peer.go`.",
        "",
        f"- **bulk**: the client writes {args.bytes >> 20} MiB while reading the echo; MB/s of payload from the",
        "  first write to the last byte back, every byte checked.",
        "- **CPU s/MB**: user + system CPU of both processes during the bulk echo, per MB echoed.",
        f"- **RTT**: {args.rtt:,} messages of 64 bytes at a steady 1,000/s, each timed from its write to its",
        "  echo (the first tenth left out).",
        f"- **soak gap**: for {args.soak:g} second{soak} a writer as fast as the stream allows and a reader",
        "  taking at most 8 KB every 2 ms; the longest time between two reads that returned data",
        "  (median of rounds; worst round in brackets).",
        "- **raw UDP**: two processes blasting 1400-byte datagrams one way, as many bytes as the",
        "  bulk echo; MB/s that reached the receiver between its first and last datagram. The",
        "  receiver takes one datagram per buffer (`recvmmsg`).",
        "- **raw UDP echo**: the bulk echo without a protocol: the client sends trains of 46",
        "  datagrams with GSO, at most 1,024 datagrams unanswered (the KCP peers' window); the",
        "  server receives trains whole (GRO) and sends each straight back; both through",
        "  `quinn-udp`, as `KcpStream`. MB/s from the first send to the last byte back. The",
        "  best raw row is the ceiling.",
        "",
        "| implementation | bulk MB/s | CPU s/MB | RTT p50 µs | RTT p99 µs | soak gap ms |",
        "|---|---|---|---|---|---|",
    ]
    for i in impls:
        r = s[i]
        lines.append(
            f"| {NAMES[i]} | {r['bulk_mb_per_s']:.1f} | {r['cpu_s_per_mb']:.4f} | {r['rtt_p50_us']:.0f} | "
            f"{r['rtt_p99_us']:.0f} | {r['soak_longest_gap_ms']:.1f} ({r['soak_worst_gap_ms']:.1f}) |"
        )
    for i, name in UDP.items():
        lines.append(f"| {name} | {s[i]['mb_per_s']:.1f} ({100 * s[i]['delivered']:.0f}% delivered) | | | | |")
    lines += ["", "| target | this run | goal | |", "|---|---|---|---|"]

    def target(name, value, goal, met):
        lines.append(f"| {name} | {value} | {goal} | {'met' if met else '**missed**'} |")

    o = s.get("ours")
    if o and "kcp_go" in s:
        g = s["kcp_go"]
        target("bulk vs kcp-go", f"{o['bulk_mb_per_s'] / g['bulk_mb_per_s']:.2f}x", ">= 1.5x",
               o["bulk_mb_per_s"] >= 1.5 * g["bulk_mb_per_s"])
        target("RTT p99 vs kcp-go", f"{o['rtt_p99_us']:.0f} vs {g['rtt_p99_us']:.0f} µs", "<= kcp-go",
               o["rtt_p99_us"] <= g["rtt_p99_us"])
    if o:
        target("bulk vs raw-UDP ceiling (best raw row)", f"{100 * o['bulk_mb_per_s'] / ceiling:.0f}%", ">= 50%",
               o["bulk_mb_per_s"] >= 0.5 * ceiling)
        target("bulk vs best one-way blast", f"{100 * o['bulk_mb_per_s'] / one_way:.0f}%", ">= 50%",
               o["bulk_mb_per_s"] >= 0.5 * one_way)
        target("slow-reader soak, longest gap", f"{o['soak_worst_gap_ms']:.0f} ms (worst round)", "< 1000 ms",
               o["soak_worst_gap_ms"] < 1000)
    if "tcp" in s:
        t = s["tcp"]["bulk_mb_per_s"]
        lines += ["", f"For scale, TCP's bulk echo is {100 * t / ceiling:.0f}% of the ceiling and "
                  f"{100 * t / one_way:.0f}% of the best one-way blast."]
    lines += ["", f"Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}.",
              END]
    return "\n".join(lines)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_section(section):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    with open(path) as f:
        text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)
    print("wrote the async section of BENCHMARKS.md")


if __name__ == "__main__":
    main()
