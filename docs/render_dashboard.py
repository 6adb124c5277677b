#!/usr/bin/python3
"""A static render of the mcbacklogd Grafana dashboard, and the load that gives it something to show.

Grafana is not packaged for Debian, so this draws the dashboard's own panels with matplotlib:
every query of packaging/grafana/mcbacklogd.json is run against a real Prometheus (as Grafana
would send it, with every instance and target selected) and plotted where the dashboard puts it.

  render_dashboard.py render --prometheus http://127.0.0.1:9090 --start T0 --end T1 --out docs/dashboard.png
  render_dashboard.py drive --fast 127.0.0.1:11211 --strict 127.0.0.1:11311

`drive` plays the phases docs/render_dashboard.sh renders: ordinary traffic, clients that
connect per request, then clients past the connection limit of `strict`, then recovery.
Needs python3-matplotlib (Debian) for `render`; `drive` uses the standard library only.
"""

import argparse
import json
import math
import re
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request

# ---------------------------------------------------------------------------------------------
# drive


def _addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def _request(sock, data, until=b"END\r\n"):
    sock.sendall(data)
    buf = b""
    while not buf.endswith(until):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def _steady(addr, stop, value):
    """One pooled client: sets and gets as fast as memcached answers, with a pause."""
    with socket.create_connection(addr, timeout=5) as s:
        i = 0
        while not stop.is_set():
            key = b"k%d" % (i % 8000)
            _request(s, b"set %s 0 0 %d\r\n%s\r\n" % (key, len(value), value), b"STORED\r\n")
            _request(s, b"get %s\r\n" % key)
            i += 1
            time.sleep(0.002)


def _slow_reader(addr, stop):
    """A client that asks for a large value again and again and never reads the replies."""
    value = b"x" * 400_000
    with socket.create_connection(addr, timeout=5) as s:
        _request(s, b"set big 0 0 %d\r\n%s\r\n" % (len(value), value), b"STORED\r\n")
        s.setblocking(False)
        while not stop.is_set():
            try:
                s.send(b"get big\r\n" * 10)
            except BlockingIOError:
                pass
            time.sleep(0.5)


def _per_request(addr, stop, per_second):
    """Connection sprawl: a new connection for every request."""
    while not stop.is_set():
        start = time.monotonic()
        for _ in range(per_second // 10):
            try:
                with socket.create_connection(addr, timeout=2) as s:
                    _request(s, b"get sprawl\r\n")
            except OSError:
                pass
        time.sleep(max(0.0, 0.1 - (time.monotonic() - start)))


def _udp(to, stop, bytes_per_second):
    """Datagrams out of the veth pair, for the NIC panels."""
    payload = b"u" * 1400
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        while not stop.is_set():
            for _ in range(bytes_per_second // len(payload) // 10):
                s.sendto(payload, (to, 9))
            time.sleep(0.1)


def _pending(addr, n):
    """Clients that connect without waiting: past the limit they wait in the kernel's queues."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(addr)
        except BlockingIOError:
            pass
        out.append(s)
    return out


def drive(args):
    fast, strict = _addr(args.fast), _addr(args.strict)
    stop = threading.Event()

    def start(target, *a):
        t = threading.Thread(target=target, args=a, daemon=True)
        t.start()
        return t

    phase = args.phase_seconds
    print(f"drive: ordinary traffic for {phase} s", flush=True)
    for _ in range(4):
        start(_steady, fast, stop, b"v" * 3000)
    start(_steady, strict, stop, b"v" * 300)
    start(_slow_reader, fast, stop)
    if args.udp_to:
        start(_udp, args.udp_to, stop, 5_000_000)
    time.sleep(phase)

    print(f"drive: clients connecting per request for {phase} s", flush=True)
    sprawl_stop = threading.Event()
    start(_per_request, fast, sprawl_stop, 300)
    time.sleep(phase)
    sprawl_stop.set()

    print(f"drive: 100 clients past the connection limit of strict for {phase} s", flush=True)
    held = _pending(strict, 100)
    time.sleep(phase)

    print(f"drive: the clients leave; {phase // 2} s of recovery", flush=True)
    for s in held:
        s.close()
    time.sleep(phase // 2)
    stop.set()


# ---------------------------------------------------------------------------------------------
# render


def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(f"{url}: {body}")
    return body["data"]


def as_grafana_sends(expr, rate_interval):
    expr = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$(instance|target)\b", ".*", expr)


def legend(fmt, labels):
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


def run_query(base, target, start, end, step, rate_interval):
    expr = as_grafana_sends(target["expr"], rate_interval)
    if target.get("instant"):
        q = urllib.parse.urlencode({"query": expr, "time": end})
        return _get(f"{base}/api/v1/query?{q}")["result"]
    q = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    return _get(f"{base}/api/v1/query_range?{q}")["result"]


def _override(panel, name, prop):
    for o in panel.get("fieldConfig", {}).get("overrides", []):
        if o["matcher"]["id"] == "byRegexp" and re.fullmatch(o["matcher"]["options"], name):
            for p in o["properties"]:
                if p["id"] == prop:
                    return p["value"]
    return None


UNIT_SCALE = {"percentunit": (100, "%"), "bytes": (1 / 2**20, "MiB"), "Bps": (1 / 2**20, "MiB/s"),
              "s": (1000, "ms"), "ops": (1, "/s"), "cps": (1, "/s"), "pps": (1, "packets/s")}


def draw_timeseries(ax, panel, results, t0):
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    right = None
    lines = 0
    for target, series in results:
        for s in series:
            name = legend(target["legendFormat"], s["metric"])
            u = _override(panel, name, "unit") or unit
            scale, label = UNIT_SCALE.get(u, (1, ""))
            axis = ax
            if _override(panel, name, "custom.axisPlacement") == "right":
                if right is None:
                    right = ax.twinx()
                    right.tick_params(labelsize=6)
                    right.set_ylabel(label, fontsize=6)
                axis = right
            else:
                ax.set_ylabel(label, fontsize=6)
            xs = [(float(v[0]) - t0) / 60 for v in s["values"]]
            ys = [float(v[1]) * scale if math.isfinite(float(v[1])) else math.nan
                  for v in s["values"]]
            style = "--" if _override(panel, name, "custom.lineStyle") else "-"
            axis.plot(xs, ys, style, linewidth=1, label=name if lines < 10 else None)
            lines += 1
    ax.set_ylim(bottom=0)
    if right is not None:
        right.set_ylim(bottom=0)
    if lines == 0:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes,
                fontsize=8, color="grey")
    handles, names = ax.get_legend_handles_labels()
    if right is not None:
        h2, n2 = right.get_legend_handles_labels()
        handles, names = handles + h2, names + n2
    if handles:
        ax.legend(handles, names, fontsize=5, loc="upper left", ncol=2, framealpha=0.6)


STATE_COLORS = {0: "#56a64b", 1: "#ff9830", 2: "#e02f44"}


def draw_state_timeline(ax, panel, results, t0):
    series = [(legend(t["legendFormat"], s["metric"]), s) for t, ss in results for s in ss]
    series.sort(key=lambda x: x[0])
    for row, (name, s) in enumerate(series):
        values = s["values"]
        for i, (ts, v) in enumerate(values):
            x0 = (float(ts) - t0) / 60
            x1 = (float(values[i + 1][0]) - t0) / 60 if i + 1 < len(values) else x0 + 1 / 30
            ax.barh(row, x1 - x0, left=x0, height=0.8, color=STATE_COLORS.get(int(float(v)), "grey"),
                    linewidth=0)
    # The names inside the bands, where Grafana writes them too, so long ones are not cut.
    for row, (name, _) in enumerate(series):
        ax.text(0.005, row, name, fontsize=5, va="center", transform=ax.get_yaxis_transform(),
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 0.5})
    ax.set_yticks([])
    ax.set_ylim(-0.5, len(series) - 0.5)
    ax.invert_yaxis()
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=c, label=l) for l, c in
                       (("ok", STATE_COLORS[0]), ("warning", STATE_COLORS[1]),
                        ("critical", STATE_COLORS[2]))],
              fontsize=5, loc="lower right", bbox_to_anchor=(1, 1), ncol=3, frameon=False)


def draw_stat(ax, panel, results):
    ax.axis("off")
    items = []
    for target, series in results:
        for s in series:
            v = float(s["value"][1])
            items.append((legend(target["legendFormat"], s["metric"]), v))
    if not items:
        ax.text(0.5, 0.5, panel["fieldConfig"]["defaults"].get("noValue", "no data"),
                ha="center", va="center", fontsize=9, color="grey")
    mappings = panel["fieldConfig"]["defaults"].get("mappings", [])
    for i, (name, v) in enumerate(sorted(items)):
        text, color = f"{v:g}", "#ff9830"
        for m in mappings:
            hit = m["options"].get(str(int(v)))
            if hit:
                text, color = hit["text"], hit["color"]
        if "critical" in name:
            color = "#e02f44"
        y = 1 - (i + 0.5) / max(len(items), 1)
        ax.text(0.02, y, name, fontsize=7, va="center", transform=ax.transAxes)
        ax.text(0.98, y, text, fontsize=7, va="center", ha="right", transform=ax.transAxes,
                color="white", bbox={"facecolor": color, "edgecolor": "none", "pad": 2})


def draw_heatmap(ax, panel, results, t0):
    series = [s for _, ss in results for s in ss]
    if not series:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        return
    series.sort(key=lambda s: float(s["metric"]["le"]))
    times = sorted({float(v[0]) for s in series for v in s["values"]})
    index = {t: i for i, t in enumerate(times)}
    grid = [[0.0] * len(times) for _ in series]
    for row, s in enumerate(series):  # cumulative buckets to per-bucket counts
        for ts, v in s["values"]:
            grid[row][index[float(ts)]] = float(v)
    for row in range(len(series) - 1, 0, -1):
        grid[row] = [max(0.0, a - b) for a, b in zip(grid[row], grid[row - 1])]
    keep = [r for r in range(len(series)) if any(grid[r])] or [0]
    lo, hi = min(keep), max(keep)
    rows = grid[lo:hi + 1]
    labels = [s["metric"]["le"] for s in series[lo:hi + 1]]
    extent = [(times[0] - t0) / 60, (times[-1] - t0) / 60, -0.5, len(rows) - 0.5]
    ax.imshow([[math.sqrt(v) for v in r] for r in rows], aspect="auto", origin="lower",
              extent=extent, cmap="Oranges", interpolation="nearest")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"≤{float(l) * 1000:g} ms" if l != "+Inf" else "+Inf" for l in labels],
                       fontsize=5)


def render(args):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.gridspec import GridSpec

    dashboard = json.load(open(args.dashboard))
    end = time.time() if args.end is None else args.end
    start = end - 600 if args.start is None else args.start
    minutes = (end - start) / 60
    step = max(1, int((end - start) / 400))
    panels = dashboard["panels"]
    height = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit = 0.42
    fig = plt.figure(figsize=(24 * 0.85, height * unit + 1.2), dpi=args.dpi)
    gs = GridSpec(height, 24, figure=fig, left=0.07, right=0.98, top=1 - 1.0 / (height * unit + 1.2),
                  bottom=0.01, hspace=4.0, wspace=1.6)
    fig.suptitle(f"{dashboard['title']} — static render of the dashboard's queries from a real "
                 f"Prometheus (not Grafana); {minutes:.1f} minutes, x axis in minutes",
                 fontsize=11, x=0.01, ha="left")
    for p in panels:
        g = p["gridPos"]
        if p["type"] == "row":
            ax = fig.add_subplot(gs[g["y"], :])
            ax.axis("off")
            ax.text(0, 0.2, p["title"], fontsize=9, weight="bold", transform=ax.transAxes)
            continue
        ax = fig.add_subplot(gs[g["y"]:g["y"] + g["h"], g["x"]:g["x"] + g["w"]])
        ax.set_title(p["title"], fontsize=8, loc="left")
        ax.tick_params(labelsize=6)
        results = [(t, run_query(args.prometheus, t, start, end, step, args.rate_interval))
                   for t in p["targets"]]
        if p["type"] == "timeseries":
            draw_timeseries(ax, p, results, start)
        elif p["type"] == "state-timeline":
            draw_state_timeline(ax, p, results, start)
        elif p["type"] == "stat":
            draw_stat(ax, p, results)
        elif p["type"] == "heatmap":
            draw_heatmap(ax, p, results, start)
        else:
            raise SystemExit(f"no drawing for panel type {p['type']}")
        if p["type"] in ("timeseries", "state-timeline", "heatmap"):
            ax.set_xlim(0, minutes)
    fig.savefig(args.out)
    print(f"render: wrote {args.out}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("render", help="draw the dashboard from a Prometheus")
    r.add_argument("--prometheus", default="http://127.0.0.1:9090")
    r.add_argument("--dashboard", default="packaging/grafana/mcbacklogd.json")
    r.add_argument("--start", type=float, help="Unix time of the left edge (default: end - 10 min)")
    r.add_argument("--end", type=float, help="Unix time of the right edge (default: now)")
    r.add_argument("--rate-interval", default="10s", help="what $__rate_interval stands for")
    r.add_argument("--dpi", type=int, default=80)
    r.add_argument("--out", default="docs/dashboard.png")
    d = sub.add_parser("drive", help="play the load phases against two memcached")
    d.add_argument("--fast", required=True, help="host:port of the memcached with default limits")
    d.add_argument("--strict", required=True, help="host:port of the memcached with -c 64")
    d.add_argument("--udp-to", help="an address to send 5 MB/s of datagrams to (a veth peer)")
    d.add_argument("--phase-seconds", type=int, default=80)
    args = ap.parse_args()
    (render if args.command == "render" else drive)(args)


if __name__ == "__main__":
    sys.exit(main())
