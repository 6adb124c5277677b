"""Shared by bench/run and bench/soak: a private network namespace, the peers (memcached,
mcbacklogd, node_exporter), processes holding connections, scrapes, and readings of a process
from /proc. Standard library only."""

import gzip
import http.client
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETNS_MARK = "MCBACKLOGD_BENCH_NETNS"
MEMCACHED_PORT = 11211
OURS_PORT = 9741
NODE_EXPORTER_PORT = 9100
# A process may open 20000 files: each holder keeps at most this many connections.
PER_HOLDER = 4500


def log(name, message):
    print(f"{name}: {message}", file=sys.stderr, flush=True)


def fail(name, message):
    log(name, message)
    sys.exit(1)


def enter_private_netns(name):
    """Re-executes the calling script in a network namespace of its own, with loopback up, so
    ports, counters and somaxconn are the run's own. Needs root or unprivileged user namespaces."""
    if os.environ.get(NETNS_MARK) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    env = dict(os.environ, **{NETNS_MARK: "1"})
    argv = [os.path.abspath(sys.argv[0])] + sys.argv[1:]
    command = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    try:
        os.execvpe(command[0], command + [sys.executable] + argv, env)
    except OSError as error:
        fail(name, f"cannot run unshare -n ({error}): run as root")


def build(name, build_dir, build_type):
    """Configures and builds the daemon (and the micro-benchmarks) into build_dir."""
    log(name, f"building {build_type} into {build_dir}")
    env = dict(os.environ, BUILD_DIR=build_dir, BUILD_TYPE=build_type)
    subprocess.run([os.path.join(ROOT, "scripts/build"), "-DMCBACKLOGD_BUILD_TESTS=OFF"],
                   env=env, check=True, stdout=subprocess.DEVNULL)


# ---- readings of a process --------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def field_value(path, field):
    """The number after "field:" in a file of such lines (/proc/<pid>/status, /proc/meminfo)."""
    with open(path) as lines:
        for line in lines:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(f"{field} in {path}")


def status_field(pid, field):
    return field_value(f"/proc/{pid}/status", field)


def rss_bytes(pid):
    return status_field(pid, "VmRSS") * 1024


def rss_anon_bytes(pid):
    """The resident pages no file backs (heap, stacks): what the process holds alone, where
    VmRSS also counts the pages of its program and libraries, shared with the page cache."""
    return status_field(pid, "RssAnon") * 1024


def threads(pid):
    return status_field(pid, "Threads")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def cpu_seconds(pid):
    """User plus system CPU time of the process, threads that ended included, in seconds
    (clock-tick resolution: a cross-check of CpuMeter, not a measurement)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def thread_runtimes(pid):
    """{thread id: nanoseconds it has run on a CPU, user and kernel} of every thread of the
    process, from /proc/<pid>/task/<tid>/schedstat (the scheduler's own clock)."""
    runtimes = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as schedstat:
                runtimes[int(tid)] = int(schedstat.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # the thread ended since the listing
            continue
    return runtimes


class CpuMeter:
    """CPU time a process spends from now on, in nanoseconds, summed over its threads'
    schedstat. Call poll() every second or so: a thread that ends between two polls takes the
    time it ran since the last one with it (Go runtimes rarely end threads; the caller can
    compare with cpu_seconds, which keeps them)."""

    def __init__(self, pid):
        self.pid = pid
        self.start = thread_runtimes(pid)
        self.latest = dict(self.start)
        self.ticks_start = cpu_seconds(pid)

    def poll(self):
        self.latest.update(thread_runtimes(self.pid))

    def nanoseconds(self):
        """Since construction; threads started since then count from zero."""
        return sum(ns - self.start.get(tid, 0) for tid, ns in self.latest.items())

    def tick_seconds(self):
        return cpu_seconds(self.pid) - self.ticks_start


# ---- peers ------------------------------------------------------------------------------------

def wait_port(port, process, what, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:.0f} s")


def stop(process):
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# memcached's -c must stay above the connections it holds: its own descriptors (listener, thread
# pipes), the daemon's stats connection and probe, and its reserve.
MEMCACHED_HEADROOM = 1024


def open_files_hard_limit():
    """The most files one process may open here (RLIMIT_NOFILE's hard limit; raising it needs
    CAP_SYS_RESOURCE)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def memcached_capacity():
    """The most client connections memcached can hold on this machine: one descriptor each,
    under the hard open-files limit."""
    return open_files_hard_limit() - MEMCACHED_HEADROOM


def start_memcached(max_connections=1024, extra=()):
    """memcached on 127.0.0.1:MEMCACHED_PORT. Its file limit follows -c (up to the hard limit)."""
    argv = ["memcached", "-U", "0", "-l", "127.0.0.1", "-p", str(MEMCACHED_PORT), "-m", "64",
            "-c", str(max_connections), *extra]
    if os.geteuid() == 0:
        argv += ["-u", "root"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(MEMCACHED_PORT, process, "memcached")
    return process


def write_config(directory, probe_interval="5s", sample_interval=None, port=OURS_PORT):
    """The daemon's defaults but for the test's ports (`port`: its web listener's);
    sample_interval: the accept-queue sampler's, when not its default."""
    path = os.path.join(directory, "mcbacklogd.yaml" if port == OURS_PORT else
                        f"mcbacklogd-{port}.yaml")
    sampler = (f"collectors:\n  sockdiag:\n    sample_interval: {sample_interval}\n"
               if sample_interval else "")
    with open(path, "w") as config:
        config.write(f"""interval: 1s
targets:
  - address: 127.0.0.1:{MEMCACHED_PORT}
    probe_interval: {probe_interval}
{sampler}web:
  listen_address: 127.0.0.1:{port}
log:
  level: warn
""")
    return path


def start_mcbacklogd(binary, config_path, port=OURS_PORT):
    process = subprocess.Popen([binary, f"--config.file={config_path}"], stdout=subprocess.DEVNULL)
    wait_port(port, process, "mcbacklogd")
    return process


# The node_exporter collectors that give the signals mcbacklogd samples (listen-queue counters,
# NIC throughput, connection states, socket counts); every other collector off.
NODE_EXPORTER_COLLECTORS = ["netstat", "netdev", "tcpstat", "sockstat"]


def start_node_exporter(port=NODE_EXPORTER_PORT):
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        raise RuntimeError("prometheus-node-exporter is not installed (scripts/bootstrap)")
    argv = [binary, f"--web.listen-address=127.0.0.1:{port}", "--collector.disable-defaults"]
    argv += [f"--collector.{name}" for name in NODE_EXPORTER_COLLECTORS]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, process, "node_exporter")
    return process


def version_of(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def machine_description():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = field_value("/proc/meminfo", "MemTotal") / (1024 * 1024)
    return (f"Linux {platform.release()}, {model}, {os.cpu_count()} CPUs, {memory:.0f} GiB, "
            f"load average {os.getloadavg()[0]:.1f} at the start")


# ---- connections ------------------------------------------------------------------------------

class Holders:
    """Child processes holding `count` established connections to 127.0.0.1:port, at most
    PER_HOLDER each. With accept=True the children listen on `port` themselves and hold both
    ends (a service the daemon does not watch)."""

    def __init__(self, port, count, accept=False):
        self.children = []
        try:
            for index, start in enumerate(range(0, count, PER_HOLDER)):
                own_port = port + index if accept else port
                self.children.append(_hold(own_port, min(PER_HOLDER, count - start), accept))
        except BaseException:
            self.close()
            raise

    def close(self):
        for pid, release in self.children:
            _release_ends.discard(release)
            os.close(release)
            os.waitpid(pid, 0)
        self.children = []


# The parent's ends of every holder's release pipe. A new holder closes its copies, or an older
# holder would never see its pipe close.
_release_ends = set()


def _hold(port, count, accept):
    ready_r, ready_w = os.pipe()
    release_r, release_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 0
        try:
            os.close(ready_r)
            os.close(release_w)
            for end in _release_ends:
                os.close(end)
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            held = []
            listener = None
            if accept:
                listener = socket.create_server(("127.0.0.1", port), backlog=4096)
            for _ in range(count):
                client = socket.create_connection(("127.0.0.1", port), timeout=10)
                # Closed with a reset, so no TIME_WAIT is left behind for the next level.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                held.append(client)
                if listener is not None:
                    held.append(listener.accept()[0])
            os.write(ready_w, b"1")
            os.read(release_r, 1)  # returns when the parent closes its end (or dies)
        except BaseException as error:  # noqa: B036 - the child reports and exits, whatever it was
            print(f"holder: {error}", file=sys.stderr, flush=True)
            status = 1
        os._exit(status)
    os.close(ready_w)
    os.close(release_r)
    if os.read(ready_r, 1) != b"1":
        os.close(ready_r)
        os.close(release_w)
        os.waitpid(pid, 0)
        raise RuntimeError(f"a holder could not make {count} connections to port {port}")
    os.close(ready_r)
    _release_ends.add(release_w)
    return pid, release_w


def established_on_host():
    """Established TCP sockets in this namespace (both ends of a loopback connection), from ss."""
    out = subprocess.run(["ss", "-Htn", "state", "established"], capture_output=True, text=True,
                         check=True).stdout
    return sum(1 for line in out.splitlines() if line.strip())


# ---- scrapes ----------------------------------------------------------------------------------

class Scraper:
    """GETs a path over one keep-alive connection, as Prometheus does (gzip accepted)."""

    HEADERS = {"Accept-Encoding": "gzip", "Accept": "text/plain;version=0.0.4"}

    def __init__(self, port, timeout=10.0):
        self.port = port
        self.timeout = timeout
        self.connection = None

    def get(self, path="/metrics"):
        """Returns (status, body as text, seconds from request to the body's end)."""
        for attempt in (0, 1):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                             timeout=self.timeout)
            started = time.perf_counter()
            try:
                self.connection.request("GET", path, headers=self.HEADERS)
                response = self.connection.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 1:
                    raise
                continue
            elapsed = time.perf_counter() - started
            if response.getheader("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if response.getheader("Connection", "").lower() == "close":
                self.close()
            return response.status, body.decode("utf-8", "replace"), elapsed
        raise AssertionError("unreachable")

    def close(self):
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def samples(text, name):
    """{labels text: value} for every sample of the metric `name` in exposition text."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            head, _, value = line.rpartition(" ")
            labels = head[len(name):]
            found[labels] = float(value)
    return found


def percentile(values, fraction):
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def on_signals_exit():
    """SIGTERM and SIGHUP end the run through the normal clean-up path."""
    def handler(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
