"""Turns criterion's estimates and the memory bench output into BENCHMARKS.md
and a chart. Ratios are reference time / our time: above 1 means ours is faster."""
import json
import os
import platform
import subprocess
import sys

criterion_dir, memory_file = sys.argv[1], sys.argv[2]


def mean_ns(group, impl, case):
    path = os.path.join(criterion_dir, group, impl, case, "new", "estimates.json")
    with open(path) as f:
        return json.load(f)["mean"]["point_estimate"]


def cases(group, impl):
    base = os.path.join(criterion_dir, group, impl)
    return sorted(c for c in os.listdir(base) if os.path.isdir(os.path.join(base, c)) and c != "report")


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


lines = [
    "# Benchmarks",
    "",
    "Our engine and the reference `ikcp.c` (crates.io `kcp-io = \"=0.0.5\"`: upstream's files",
    "unmodified, compiled at -O2 by its build script) run identical work in one process;",
    "each workload first checks that both put the same number of bytes on the wire.",
    "**Ratio = reference time / our time**: above 1.00 ours is faster, below 1.00 it is slower.",
    "",
    f"- Machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
    f"- rustc: {subprocess.run(['rustc', '--version'], capture_output=True, text=True).stdout.strip()}",
    "- Command: `bash scripts/bench-report.sh` (criterion, 10 samples, 1 s measurement per line)",
    "",
]

groups = [
    ("engine_throughput", "1 KB messages sent, flushed, input on the peer, received (fast mode, window 1024)"),
    ("engine_small_messages", "1,000 messages of 64 B"),
    ("engine_large_message", "one message of 16 KB / 64 KB: fragmentation and reassembly"),
    ("window_scaling", "4 MB bulk transfer through an in-memory link, fast mode, windows 128/1024/4096, 0% and 2% loss"),
    ("input_parse", "`input` of one datagram into a fresh endpoint: 57 ACKs, or one full data segment"),
]
scaling = {}
for group, what in groups:
    lines += [f"## {group}", "", what, "", "| case | ours | reference | ratio |", "|---|---|---|---|"]
    for case in sorted(cases(group, "ours"), key=lambda c: [int(t) if t.isdigit() else t for t in c.replace("x", "_").replace("wnd", "").replace("loss", "").split("_")]):
        ours, ref = mean_ns(group, "ours", case), mean_ns(group, "reference", case)
        extra = ""
        if group == "window_scaling":
            scaling[case] = (ours, ref)
            extra = f" ({ours / 1e6 / 4:.2f} vs {ref / 1e6 / 4:.2f} ms CPU per MB)"
        lines.append(f"| {case} | {fmt_time(ours)} | {fmt_time(ref)} | {ref / ours:.2f}{extra} |")
    lines.append("")

if os.path.isdir(os.path.join(criterion_dir, "capi_overhead", "ours_capi")):
    rust = mean_ns("capi_overhead", "ours", "rust_api")
    capi = mean_ns("capi_overhead", "ours_capi", "c_abi")
    lines += [
        "## capi_overhead",
        "",
        "The same 2 MB transfer (2% loss) through our `ikcp_*` C functions and through our Rust API.",
        "",
        "| Rust API | C ABI | C ABI / Rust API |",
        "|---|---|---|",
        f"| {fmt_time(rust)} | {fmt_time(capi)} | {capi / rust:.2f} |",
        "",
    ]

memory = {}
with open(memory_file) as f:
    for line in f:
        parts = line.split()
        if len(parts) == 4 and parts[0] == "memory":
            memory[(parts[1], parts[2])] = int(parts[3])
lines += [
    "## Memory",
    "",
    "Bytes allocated, counted by a counting global allocator on our side and by `ikcp_allocator`",
    "hooks on the reference side (`cargo bench -p ikcp-bench --bench memory`).",
    "",
    "| what | ours | reference |",
    "|---|---|---|",
]
for what in ("idle_connection", "per_inflight_segment"):
    lines.append(f"| {what.replace('_', ' ')} | {memory.get((what, 'ours'))} | {memory.get((what, 'reference'))} |")
lines += [
    "",
    "## Async layer on loopback",
    "",
    "Not measured yet: KcpStream vs tokio_kcp vs TcpStream and idle-connection CPU are still to be added.",
    "",
    "![window scaling](docs/window_scaling.png)",
    "",
]

with open("BENCHMARKS.md", "w") as f:
    f.write("\n".join(lines))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

os.makedirs("docs", exist_ok=True)
labels = sorted(scaling, key=lambda c: (int(c.split("_")[0][3:]), c))
x = range(len(labels))
fig, ax = plt.subplots(figsize=(9, 4.5))
ax.bar([i - 0.2 for i in x], [scaling[c][0] / 1e6 / 4 for c in labels], 0.4, label="ours (Rust engine)")
ax.bar([i + 0.2 for i in x], [scaling[c][1] / 1e6 / 4 for c in labels], 0.4, label="reference ikcp.c")
ax.set_xticks(list(x))
ax.set_xticklabels([c.replace("_", "\n") for c in labels])
ax.set_ylabel("CPU ms per MB delivered (lower is better)")
ax.set_title("window_scaling: bulk transfer, fast mode")
ax.legend()
fig.tight_layout()
fig.savefig("docs/window_scaling.png", dpi=100)
print("wrote BENCHMARKS.md and docs/window_scaling.png")
