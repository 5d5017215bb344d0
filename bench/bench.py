#!/usr/bin/python3
"""Measure synosh against its baselines and print one table of ratios.

bench/run builds synosh and bench/curl_loop, then runs this script. Every ratio is
measured in the same run as its baseline, against DSM simulators on 127.0.0.1 over
plain HTTP, so TLS costs nothing on either side. Each figure is the median of several
runs. The table has one row per measure: synosh's figure, the baseline's, their ratio,
the goal, and whether the goal is met.

Python 3 standard library only; the Python baseline (bench/job.py) needs python3-requests.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIMULATOR = ROOT / "tests" / "sim" / "dsm_sim.py"
GENERATOR = ROOT / "tests" / "fixtures" / "gen_inventory.py"
HOMELAB = ROOT / "tests" / "fixtures" / "homelab.json"
USER = "admin"

MEASURES = ("startup", "calls", "job", "memory", "scaling")
MEGABYTE = 1024 * 1024


@dataclasses.dataclass
class Run:
    """One finished client process."""

    wall: float          # seconds from spawn to exit
    cpu: float           # user + system seconds of the process and its waited-for children
    max_rss_kb: int      # peak resident set size of the largest process, in KiB
    stdout: str


@dataclasses.dataclass
class Row:
    measure: str
    synosh: str
    baseline: str
    ratio: str
    goal: str
    met: bool | None     # None: no goal, the row only informs


class Simulator:
    """One dsm_sim.py process serving a fixture over plain HTTP on 127.0.0.1."""

    def __init__(self, name: str, fixture: Path, workdir: Path):
        self.name = name
        self.stderr = open(workdir / f"sim-{name}.log", "wb")
        self.process = subprocess.Popen(
            [sys.executable, str(SIMULATOR), "--port", "0", "--fixture", str(fixture)],
            stdout=subprocess.PIPE, stderr=self.stderr)
        self.url = ""

    def wait_ready(self) -> None:
        """Read the base URL, which the simulator prints once the fixture is loaded."""
        line = self.process.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            raise SystemExit(f"bench: the {self.name} simulator did not start; see {self.stderr.name}")
        self.url = line

    def control(self, path: str, body: bytes | None = None) -> object:
        request = urllib.request.Request(self.url + path, data=body, method="POST" if body is not None else "GET")
        with urllib.request.urlopen(request, timeout=120) as reply:
            return json.load(reply)

    def reset(self) -> None:
        self.control("/_sim/reset", b"")

    def stats(self) -> dict:
        return self.control("/_sim/stats")

    def image_names(self) -> set[tuple[str, str, str]]:
        return {(image["id"], image["repository"], image["tag"]) for image in self.control("/_sim/state")["images"]}

    def cpu_seconds(self) -> float:
        """Return the simulator's own CPU time (user + system) so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.stderr.close()


class Bench:
    def __init__(self, options: argparse.Namespace):
        self.options = options
        self.build = Path(options.build).resolve()
        self.synosh = self.build / "synosh"
        self.curl_loop = self.build / "bench" / "curl_loop"
        self.workdir = self.build / "bench"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.home = Path(tempfile.mkdtemp(prefix="home-", dir=self.workdir))
        self.password_file = self.home / "password"
        password = next(user["password"] for user in json.loads(HOMELAB.read_text())["users"] if user["account"] == USER)
        self.password_file.write_text(password + "\n", encoding="utf-8")
        self.password_file.chmod(0o600)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.home),
                    "XDG_CONFIG_HOME": str(self.home / "config"), "XDG_STATE_HOME": str(self.home / "state"),
                    "LANG": "C.UTF-8"}
        self.simulators: dict[str, Simulator] = {}
        self.rows: list[Row] = []
        self.notes: list[str] = []

    # -- processes ----------------------------------------------------------

    def run(self, argv: list[str], *, check: bool = True) -> Run:
        """Run a client to completion and return its wall time, CPU time and peak RSS."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            start = time.perf_counter()
            process = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=self.env)
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(), err.read().decode()
        if check and process.returncode != 0:
            raise SystemExit(f"bench: {' '.join(argv)} exited with {process.returncode}:\n{stderr}")
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stdout)

    def spawn_wall(self, argv: list[str]) -> float:
        """Return the wall time of one run of argv, spawned without a shell or pipes."""
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], argv, self.env)
        _, status = os.waitpid(pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"bench: {' '.join(argv)} failed")
        return wall

    def synosh_argv(self, simulator: Simulator, script: str, *args: str) -> list[str]:
        return [str(self.synosh), "--url", simulator.url, "--user", USER, "--password-file",
                str(self.password_file), str(ROOT / "bench" / script), *args]

    def repeat(self, count: int) -> int:
        return max(1, round(count * self.options.runs_scale))

    # -- simulators ---------------------------------------------------------

    def start_simulators(self, names: set[str]) -> None:
        fixtures = {"homelab": HOMELAB}
        for name, images in (("10k", 10_000), ("100k", 100_000)):
            if name in names:
                path = self.workdir / f"inventory-{name}.json"
                with open(path, "wb") as handle:
                    subprocess.run([sys.executable, str(GENERATOR), "--images", str(images), "--seed", "1"],
                                   stdout=handle, check=True)
                fixtures[name] = path
        for name, fixture in fixtures.items():
            if name in names:
                self.simulators[name] = Simulator(name, fixture, self.workdir)
        for simulator in self.simulators.values():
            simulator.wait_ready()

    def stop_simulators(self) -> None:
        for simulator in self.simulators.values():
            simulator.stop()

    def remove_home(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    # -- measures -----------------------------------------------------------

    def measure_startup(self) -> None:
        rounds, per_round = self.repeat(9), 20
        synosh = [str(self.synosh), "-e", ""]
        lua = ["/usr/bin/lua5.4", "-e", ""]
        for _ in range(3):  # warm the page cache
            self.spawn_wall(synosh)
            self.spawn_wall(lua)
        synosh_times, lua_times = [], []
        for _ in range(rounds):
            synosh_total = lua_total = 0.0
            for _ in range(per_round):
                synosh_total += self.spawn_wall(synosh)
                lua_total += self.spawn_wall(lua)
            synosh_times.append(synosh_total / per_round)
            lua_times.append(lua_total / per_round)
        synosh_ms, lua_ms = statistics.median(synosh_times) * 1e3, statistics.median(lua_times) * 1e3
        ratio = synosh_ms / lua_ms
        self.rows.append(Row("start-up: synosh -e '' vs lua5.4 -e ''", f"{synosh_ms:.2f} ms", f"{lua_ms:.2f} ms",
                             f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5))

    def measure_calls(self) -> None:
        simulator = self.simulators["homelab"]
        count = 1000
        synosh_cpu, loop_cpu, synosh_connections, loop_connections = [], [], [], []
        for index in range(self.repeat(7)):
            simulator.reset()
            loop = self.run([str(self.curl_loop), simulator.url, USER, str(self.password_file), str(count)])
            loop_cpu.append(json.loads(loop.stdout)["cpu_seconds"] / count)
            loop_connections.append(simulator.stats()["connections"])
            if index == 0:
                loop_requests = self.request_shapes(simulator)
            simulator.reset()
            synosh = self.run(self.synosh_argv(simulator, "calls.lua", str(count)))
            synosh_cpu.append(json.loads(synosh.stdout)["cpu_seconds"] / count)
            synosh_connections.append(simulator.stats()["connections"])
            if index == 0 and self.request_shapes(simulator) != loop_requests:
                raise SystemExit("bench: bench/curl_loop and bench/calls.lua sent different requests")
        synosh_us, loop_us = statistics.median(synosh_cpu) * 1e6, statistics.median(loop_cpu) * 1e6
        ratio = synosh_us / loop_us
        self.rows.append(Row("client CPU per call, 1,000 calls vs bare libcurl", f"{synosh_us:.1f} us",
                             f"{loop_us:.1f} us", f"{ratio:.2f}x", "<= 1.5x", ratio <= 1.5))
        connections = max(synosh_connections)
        self.rows.append(Row("TCP connections opened, 1,000 calls", str(connections), str(max(loop_connections)),
                             "-", "1", connections == 1))

    def request_shapes(self, simulator: Simulator) -> set[tuple]:
        """Return the distinct (HTTP method, query, header names) of the image get requests logged."""
        records = simulator.control("/_sim/log")
        return {(record["http_method"], record["raw_query"], tuple(sorted(record["headers"])))
                for record in records if record["method"] == "get"}

    def measure_job(self) -> None:
        simulator = self.simulators["10k"]
        count = "500"
        clients = {
            "synosh": (self.synosh_argv(simulator, "job.lua", count), self.repeat(5)),
            "python": (["/usr/bin/python3", str(ROOT / "bench" / "job.py"), simulator.url, USER,
                        str(self.password_file), count], self.repeat(5)),
            "curl+jq": ([str(ROOT / "bench" / "job.sh"), simulator.url, USER, str(self.password_file), count],
                        self.repeat(3)),
        }
        simulator.reset()
        inventory = simulator.image_names()
        walls: dict[str, list[float]] = {name: [] for name in clients}
        cpus: dict[str, list[float]] = {name: [] for name in clients}
        server: dict[str, list[float]] = {name: [] for name in clients}
        deleted_by: dict[str, set] = {}
        rounds = max(runs for _, runs in clients.values())
        for index in range(rounds):
            for name, (argv, runs) in clients.items():
                if index >= runs:
                    continue
                simulator.reset()
                server_before = simulator.cpu_seconds()
                run = self.run(argv)
                server[name].append(simulator.cpu_seconds() - server_before)
                walls[name].append(run.wall)
                cpus[name].append(run.cpu)
                stats = simulator.stats()
                deleted = inventory - simulator.image_names()
                if stats["logins"] != 1 or stats["logouts"] != 1 or len(deleted) != int(count):
                    raise SystemExit(f"bench: the {name} job did not log in, delete {count} images and log out: "
                                     f"{stats}, {len(deleted)} deleted")
                if deleted_by.setdefault(name, deleted) != deleted_by["synosh"]:
                    raise SystemExit(f"bench: the {name} job deleted other images than synosh's")
        simulator.reset()

        wall = {name: statistics.median(values) for name, values in walls.items()}
        cpu = {name: statistics.median(values) for name, values in cpus.items()}
        server_seconds = statistics.median(server["synosh"])
        for baseline, goal in (("curl+jq", 20), ("python", 3)):
            label = "curl+jq script" if baseline == "curl+jq" else "Python requests.Session"
            ratio = cpu[baseline] / cpu["synosh"]
            self.rows.append(Row(f"whole job, client CPU vs {label}", f"{cpu['synosh']:.3f} s",
                                 f"{cpu[baseline]:.3f} s", f"{ratio:.1f}x faster", f">= {goal}x", ratio >= goal))
        for baseline, goal in (("curl+jq", 20), ("python", 3)):
            label = "curl+jq script" if baseline == "curl+jq" else "Python requests.Session"
            ratio = wall[baseline] / wall["synosh"]
            bound = wall[baseline] / server_seconds
            # Informational: the simulator's own time is in every wall time, so it caps the ratio.
            self.rows.append(Row(f"whole job, wall time vs {label}", f"{wall['synosh']:.3f} s",
                                 f"{wall[baseline]:.3f} s", f"{ratio:.1f}x faster", f"(at most {bound:.1f}x)", None))
        self.notes.append(
            f"whole job: the simulator used {server_seconds:.3f} s of CPU serving synosh's job, so no client "
            "can be faster than that in wall time; the cap in the goal column is the baseline's wall time "
            "divided by it. The client CPU rows compare the clients' own cost.")

    def list_response_bytes(self, simulator: Simulator) -> int:
        """Return the size of the body of image.list's response to one request for every image."""
        endpoint = simulator.url + "/webapi/entry.cgi"
        password = self.password_file.read_text(encoding="utf-8").rstrip("\n")
        form = urllib.parse.urlencode({"api": "SYNO.API.Auth", "version": 7, "method": "login", "account": USER,
                                       "passwd": password, "format": "sid"}).encode()
        with urllib.request.urlopen(endpoint, form, timeout=120) as reply:
            sid = json.load(reply)["data"]["sid"]
        query = urllib.parse.urlencode({"api": "SYNO.Docker.Image", "version": 1, "method": "list", "offset": 0,
                                        "limit": -1, "show_dsm": "false"})
        request = urllib.request.Request(f"{endpoint}?{query}", headers={"Cookie": f"id={sid}"})
        with urllib.request.urlopen(request, timeout=120) as reply:
            size = len(reply.read())
        logout = urllib.parse.urlencode({"api": "SYNO.API.Auth", "version": 7, "method": "logout", "_sid": sid})
        urllib.request.urlopen(endpoint, logout.encode(), timeout=120).close()
        return size

    def measure_memory(self) -> None:
        simulator = self.simulators["100k"]
        json_bytes = self.list_response_bytes(simulator)
        peaks, bases = [], []
        for _ in range(self.repeat(3)):
            run = self.run(self.synosh_argv(simulator, "list.lua"))
            peaks.append(run.max_rss_kb * 1024)
            bases.append(json.loads(run.stdout)["rss_before_list_kib"] * 1024)
        peak, base = statistics.median(peaks), statistics.median(bases)
        limit = 2.5 * json_bytes + 10 * MEGABYTE
        self.rows.append(Row("peak RSS listing 100,000 images vs JSON size", f"{peak / MEGABYTE:.1f} MiB",
                             f"{json_bytes / MEGABYTE:.1f} MiB", f"{peak / json_bytes:.2f}x",
                             f"<= 2.5x + 10 MiB ({limit / MEGABYTE:.1f} MiB)", peak <= limit))
        self.notes.append(f"peak RSS: {base / MEGABYTE:.1f} MiB after the login (libraries, Lua, libcurl), "
                          f"{(peak - base) / MEGABYTE:.1f} MiB more for the listing "
                          f"({(peak - base) / json_bytes:.2f}x the JSON)")

    def measure_scaling(self) -> None:
        small, large = self.simulators["10k"], self.simulators["100k"]
        small.reset()
        times: dict[str, list[float]] = {"10k": [], "100k": []}
        parts: dict[str, dict[str, list[float]]] = {"10k": {"list": [], "plan": []},
                                                     "100k": {"list": [], "plan": []}}
        counts = {}
        for _ in range(self.repeat(3)):
            for name, simulator in (("10k", small), ("100k", large)):
                result = json.loads(self.run(self.synosh_argv(simulator, "plan.lua")).stdout)
                times[name].append(result["list_seconds"] + result["plan_seconds"])
                parts[name]["list"].append(result["list_seconds"])
                parts[name]["plan"].append(result["plan_seconds"])
                counts[name] = result["images"]
        small_seconds, large_seconds = statistics.median(times["10k"]), statistics.median(times["100k"])
        ratio = large_seconds / small_seconds
        self.rows.append(Row(f"list+plan CPU, {counts['100k']:,} vs {counts['10k']:,} images",
                             f"{large_seconds:.3f} s", f"{small_seconds:.3f} s", f"{ratio:.2f}x", "<= 11x",
                             ratio <= 11))
        split = {f"{part} {name}": statistics.median(parts[name][part]) for name in parts for part in ("list", "plan")}
        self.notes.append(f"list+plan: list {split['list 10k']:.3f} s -> {split['list 100k']:.3f} s "
                          f"({split['list 100k'] / split['list 10k']:.1f}x), plan {split['plan 10k']:.3f} s -> "
                          f"{split['plan 100k']:.3f} s ({split['plan 100k'] / split['plan 10k']:.1f}x)")

    # -- report -------------------------------------------------------------

    def header(self) -> str:
        model = "unknown CPU"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        version = subprocess.run([str(self.synosh), "--version"], capture_output=True, text=True).stdout.strip()
        return (f"{version}\n{model}, {os.cpu_count()} cores, Linux {platform.release()}, "
                f"{time.strftime('%Y-%m-%d %H:%M %Z')}")

    def table(self) -> str:
        heads = ("measure", "synosh", "baseline", "ratio", "goal", "result")
        lines = []
        for row in self.rows:
            if row.met is None:
                result = "-"
            else:
                result = "met" if row.met else "MISSED"
            lines.append((row.measure, row.synosh, row.baseline, row.ratio, row.goal, result))
        widths = [max(len(cell) for cell in column) for column in zip(heads, *lines)]
        render = lambda cells: "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()
        out = [render(heads), render(tuple("-" * width for width in widths))]
        out += [render(line) for line in lines]
        return "\n".join(out)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark synosh against its baselines.")
    parser.add_argument("--build", default=str(ROOT / "build"), help="build directory with synosh and bench/curl_loop")
    parser.add_argument("--only", default=",".join(MEASURES),
                        help=f"comma-separated measures to run (default: all of {', '.join(MEASURES)})")
    parser.add_argument("--runs-scale", type=float, default=1.0,
                        help="multiply the number of runs of each measure (default 1; 0.4 for a quick look)")
    options = parser.parse_args()
    unknown = set(options.only.split(",")) - set(MEASURES)
    if unknown:
        parser.error(f"unknown measure {', '.join(sorted(unknown))}; choose from {', '.join(MEASURES)}")
    return options


def main() -> int:
    options = parse_arguments()
    bench = Bench(options)
    only = options.only.split(",")
    needed = {"calls": {"homelab"}, "job": {"10k"}, "memory": {"100k"}, "scaling": {"10k", "100k"}}
    simulators = set().union(*(needed.get(measure, set()) for measure in only))
    print(bench.header(), flush=True)
    try:
        bench.start_simulators(simulators)
        for measure in MEASURES:
            if measure in only:
                started = time.perf_counter()
                getattr(bench, f"measure_{measure}")()
                print(f"  {measure}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    finally:
        bench.stop_simulators()
        bench.remove_home()
    print()
    print(bench.table())
    for note in bench.notes:
        print(f"note: {note}")
    return 0 if all(row.met is not False for row in bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
