"""A Raspberry Pi 4 core on this machine: run a command inside a cgroup whose CPU quota
is the share of one core that matches a Pi 4 core, pinned to one CPU (or `--cores 4`:
four such cores, one share per thread).

Calibration (bench/RESULTS.md, "Pi budget"): sysbench 1.0.20 `sysbench cpu --threads=1
--time=60 run` on a Raspberry Pi 4 Model B (Cortex-A72 at 1.5 GHz) gives 1,477.83
events/s (leoncode.co.uk/articles/raspberry-pi-benchmarks). The same sysbench runs here
for a few seconds at startup, and the share is the ratio, so the budget follows whatever
machine CI lands on; the same sysbench inside the budget shows where it landed. The Pi 4
(BCM2711) has no ARMv8 crypto extensions, so hashing is relatively slower there than
this share says; memory-bound work (scrypt) too, LPDDR4 against a server's DDR4.

    python bench/pibudget.py -- python bench/sequence_bench.py --per-condition 4
    python bench/pibudget.py --share 0.33 -- python -c 'print(1)'
    python bench/pibudget.py --cores 4 -- python bench/denylist_bench.py   # a whole Pi 4
    python bench/pibudget.py --calibrate          # the calibration table only

Benchmarks take `--pi4` and re-run themselves through `run_self_under_budget()`.
Needs root and a cgroup cpu controller (v2 `cpu.max`, or v1 `cpu.cfs_quota_us`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

#: sysbench 1.0.20 cpu, one thread, on a Raspberry Pi 4 Model B at 1.5 GHz (events/s).
PI4_SYSBENCH_EVENTS_S = 1477.83
PI4_SOURCE = "https://leoncode.co.uk/articles/raspberry-pi-benchmarks (sysbench 1.0.20, cpu, 1 thread)"
#: The share used where sysbench is not installed: measured on the 2-core AMD EPYC this
#: was built on (4,425 events/s) -> 0.334.
FALLBACK_SHARE = 0.334
#: The cgroup's period; the quota is share x period. Short (3 ms, so the quota stays above
#: the kernel's 1 ms floor), so that a step of a few milliseconds is stretched as on a
#: slower core instead of running at full speed and then waiting out a long period.
PERIOD_US = 3_000
#: The kernel refuses a quota under 1 ms; a smaller share gets a longer period.
MIN_QUOTA_US = 1_000
#: Environment variable a child sees when it already runs inside the budget.
ENV_MARK = "KIOSK_PI4_BUDGET"
#: ... and how many Pi cores it has.
ENV_CORES = "KIOSK_PI4_CORES"
CALIBRATE_S = 5


def sysbench_rate(seconds: int = CALIBRATE_S, *, prefix: list[str] | None = None) -> float | None:
    """sysbench cpu events/s on one thread, or None without sysbench."""
    exe = shutil.which("sysbench")
    if exe is None:
        return None
    out = subprocess.run([*(prefix or []), exe, "cpu", "--threads=1", f"--time={seconds}", "run"],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"events per second:\s*([\d.]+)", out)
    return float(m[1]) if m else None


def pi4_share(host_rate: float | None) -> float:
    return FALLBACK_SHARE if not host_rate else min(1.0, PI4_SYSBENCH_EVENTS_S / host_rate)


class BudgetError(RuntimeError):
    pass


class CpuBudget:
    """A child cgroup with `share` of one CPU per Pi core. `run()` runs a command in it.

    `cores` 1 (the default): the command is pinned to one CPU with that quota, one Pi 4
    core. `cores` k > 1: k Pi 4 cores. Each of the command's threads is placed, as it
    appears, into one of k sub-cgroups of `share` each (round robin), under a parent of
    k x share, on min(k, CPUs) CPUs: no thread runs faster than a Pi core and together
    they use at most k of them. (A single cgroup of k x share would let one thread run at
    a whole core of this machine, three Pi cores' speed.) Threads live only a few
    milliseconds before they are placed, so short-lived threads escape the budget.
    """

    def __init__(self, share: float, cpu: int | None = None, *, cores: int = 1) -> None:
        if not 0.01 <= share <= 1.0:
            raise BudgetError(f"share {share}: expected 0.01 to 1.0 of one core")
        if not 1 <= cores <= 64:
            raise BudgetError(f"cores {cores}: expected 1 to 64")
        if os.geteuid() != 0:
            raise BudgetError("a cgroup CPU budget needs root")
        self.share, self.cores = share, cores
        cpus = sorted(os.sched_getaffinity(0))
        if cores == 1:
            self.cpus = {cpu if cpu is not None else cpus[-1]}
        else:
            self.cpus = set(cpus[-min(cores, len(cpus)):])
        self.subs: list[Path] = []
        self.path = self._make(f"kiosk-pi4-{uuid.uuid4().hex[:8]}")

    def _make(self, name: str) -> Path:
        period = max(PERIOD_US, math.ceil(MIN_QUOTA_US / self.share))
        quota = int(self.share * period)
        v2 = Path("/sys/fs/cgroup")
        if (v2 / "cgroup.controllers").exists() and "cpu" in (v2 / "cgroup.controllers").read_text().split():
            # cgroup v2 (the unified hierarchy at the top): enable cpu for children.
            try:
                (v2 / "cgroup.subtree_control").write_text("+cpu")
            except OSError:
                pass
            path = v2 / name
            path.mkdir()
            (path / "cpu.max").write_text(f"{quota * self.cores} {period}")
            self.procs = path / "cgroup.procs"
            self.threads_file = "cgroup.threads"
            if self.cores > 1:
                (path / "cgroup.subtree_control").write_text("+cpu")
                for i in range(self.cores):
                    sub = path / f"core{i}"
                    sub.mkdir()
                    (sub / "cgroup.type").write_text("threaded")
                    (sub / "cpu.max").write_text(f"{quota} {period}")
                    self.subs.append(sub)
                self.procs = self.subs[0] / "cgroup.procs"
            return path
        v1 = Path("/sys/fs/cgroup/cpu")
        if (v1 / "cpu.cfs_quota_us").exists():
            path = v1 / name
            path.mkdir()
            (path / "cpu.cfs_period_us").write_text(str(period))
            (path / "cpu.cfs_quota_us").write_text(str(quota * self.cores))
            self.procs = path / "cgroup.procs"
            self.threads_file = "tasks"  # v1 moves one thread at a time through `tasks`
            for i in range(self.cores if self.cores > 1 else 0):
                sub = path / f"core{i}"
                sub.mkdir()
                (sub / "cpu.cfs_period_us").write_text(str(period))
                (sub / "cpu.cfs_quota_us").write_text(str(quota))
                self.subs.append(sub)
            if self.subs:
                self.procs = self.subs[0] / "cgroup.procs"
            return path
        raise BudgetError("no cgroup cpu controller (neither v2 cpu.max nor v1 cpu.cfs_quota_us)")

    def _place_threads(self, pid: int, stop: threading.Event) -> None:
        """Put every thread of pid (and of its children) into a Pi core's cgroup."""
        placed: set[int] = set()
        while not stop.is_set():
            for proc in [pid, *_descendants(pid)]:
                try:
                    tids = [int(t) for t in os.listdir(f"/proc/{proc}/task")]
                except OSError:
                    continue
                for tid in tids:
                    if tid in placed:
                        continue
                    sub = self.subs[len(placed) % len(self.subs)]
                    try:
                        (sub / self.threads_file).write_text(str(tid))
                    except OSError:
                        continue  # gone already
                    placed.add(tid)
            stop.wait(0.002)

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run argv inside the budget (placed in the cgroup before it execs)."""
        procs, cpus = str(self.procs), self.cpus

        def enter() -> None:
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
            os.sched_setaffinity(0, cpus)

        env = {**os.environ, ENV_MARK: f"{self.share:.3f}", ENV_CORES: str(self.cores), **kwargs.pop("env", {})}
        if not self.subs:
            return subprocess.run(argv, preexec_fn=enter, env=env, **kwargs)
        stop = threading.Event()
        with subprocess.Popen(argv, preexec_fn=enter, env=env, **kwargs) as child:
            watcher = threading.Thread(target=self._place_threads, args=(child.pid, stop), daemon=True)
            watcher.start()
            try:
                out, err = child.communicate()
            finally:
                stop.set()
                watcher.join()
        return subprocess.CompletedProcess(argv, child.returncode, out, err)

    def close(self) -> None:
        for path in [*self.subs, self.path]:
            try:
                path.rmdir()
            except OSError:
                pass

    def __enter__(self) -> "CpuBudget":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _descendants(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    out = [int(k) for k in kids]
    for k in list(out):
        out.extend(_descendants(k))
    return out


def _rate_inside(share: float, seconds: int) -> float:
    with CpuBudget(share) as budget:
        out = budget.run([shutil.which("sysbench"), "cpu", "--threads=1", f"--time={seconds}", "run"],
                         capture_output=True, text=True, check=True).stdout
    return float(re.search(r"events per second:\s*([\d.]+)", out)[1])


def calibrate(seconds: int = CALIBRATE_S) -> tuple[float | None, float]:
    """(host sysbench rate, share). The share starts as the ratio of the rates and is then
    corrected once by a run inside the budget: throttling in short periods costs a little
    on its own, and the budget should match a Pi 4 core, not undercut it."""
    host = sysbench_rate(seconds)
    share = pi4_share(host)
    if host is not None:
        share = min(1.0, share * PI4_SYSBENCH_EVENTS_S / _rate_inside(share, seconds))
    return host, share


def calibration_table(seconds: int = CALIBRATE_S, *, measured: tuple[float | None, float] | None = None) -> str:
    """The calibration as a table; `measured` is a (host rate, share) already taken."""
    host, share = measured or calibrate(seconds)
    rows = ["| where | sysbench cpu, 1 thread (events/s) | ratio to a Pi 4 |", "|---|---:|---:|",
            f"| Raspberry Pi 4 (published) | {PI4_SYSBENCH_EVENTS_S:,.2f} | 1.00x |"]
    if host is not None:
        rows.append(f"| this machine, one core | {host:,.2f} | {host / PI4_SYSBENCH_EVENTS_S:.2f}x |")
        inside = _rate_inside(share, seconds)
        rows.append(f"| this machine in the budget ({share:.3f} of a core) | {inside:,.2f} | "
                    f"{inside / PI4_SYSBENCH_EVENTS_S:.2f}x |")
    else:
        rows.append(f"| this machine | (sysbench not installed: share {share}) | |")
    return f"Pi 4 budget: {share:.3f} of one core (source: {PI4_SOURCE})\n\n" + "\n".join(rows)


def in_budget() -> float | None:
    """The share this process runs under (None: not inside a Pi budget)."""
    mark = os.environ.get(ENV_MARK)
    return float(mark) if mark else None


def budget_cores() -> int:
    """How many Pi cores the budget this process runs under has (1 outside one)."""
    return int(os.environ.get(ENV_CORES) or 1)


def _without_budget_flags(argv: list[str], strip: str) -> list[str]:
    """argv minus `strip` and `strip-cores N` (or `strip-cores=N`)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == f"{strip}-cores":
            skip = True
        elif a != strip and not a.startswith(f"{strip}-cores="):
            out.append(a)
    return out


def run_self_under_budget(argv: list[str], *, strip: str = "--pi4", cores: int = 1) -> int:
    """Re-run this script (sys.argv[0] with `argv` minus `strip` and `strip-cores N`)
    inside a Pi 4 budget of `cores` Pi cores; returns its exit code. Prints the
    calibration first."""
    measured = calibrate()
    print(calibration_table(measured=measured), flush=True)
    print(flush=True)
    with CpuBudget(measured[1], cores=cores) as budget:
        child = [sys.executable, sys.argv[0], *_without_budget_flags(argv, strip)]
        return budget.run(child).returncode


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, cmd = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 usage="pibudget.py [--share S] [--calibrate] -- COMMAND...")
    ap.add_argument("--share", type=float, help="share of one core (default: calibrated with sysbench)")
    ap.add_argument("--cores", type=int, default=1,
                    help="Pi 4 cores: each thread gets one core's share, all together at most this many (default 1)")
    ap.add_argument("--calibrate", action="store_true", help="print the calibration table and exit")
    args = ap.parse_args(argv)
    try:
        if args.calibrate or not cmd:
            print(calibration_table())
            return 0
        share = args.share or calibrate()[1]
        with CpuBudget(share, cores=args.cores) as budget:
            print(f"pibudget: {args.cores} x {share:.3f} of CPU {sorted(budget.cpus)} ({budget.path})",
                  file=sys.stderr, flush=True)
            return budget.run(cmd).returncode
    except BudgetError as exc:
        print(f"pibudget: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
