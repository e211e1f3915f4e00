"""A Raspberry Pi 4 core on this machine: run a command inside a cgroup whose CPU quota
is the share of one core that matches a Pi 4 core, pinned to one CPU.

Calibration (bench/RESULTS.md, "Pi budget"): sysbench 1.0.20 `sysbench cpu --threads=1
--time=60 run` on a Raspberry Pi 4 Model B (Cortex-A72 at 1.5 GHz) gives 1,477.83
events/s (leoncode.co.uk/articles/raspberry-pi-benchmarks). The same sysbench runs here
for a few seconds at startup, and the share is the ratio, so the budget follows whatever
machine CI lands on; the same sysbench inside the budget shows where it landed. The Pi 4
(BCM2711) has no ARMv8 crypto extensions, so hashing is relatively slower there than
this share says; memory-bound work (scrypt) too, LPDDR4 against a server's DDR4.

    python bench/pibudget.py -- python bench/sequence_bench.py --per-condition 4
    python bench/pibudget.py --share 0.33 -- python -c 'print(1)'
    python bench/pibudget.py --calibrate          # the calibration table only

Benchmarks take `--pi4` and re-run themselves through `run_self_under_budget()`.
Needs root and a cgroup cpu controller (v2 `cpu.max`, or v1 `cpu.cfs_quota_us`).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

#: sysbench 1.0.20 cpu, one thread, on a Raspberry Pi 4 Model B at 1.5 GHz (events/s).
PI4_SYSBENCH_EVENTS_S = 1477.83
PI4_SOURCE = "https://leoncode.co.uk/articles/raspberry-pi-benchmarks (sysbench 1.0.20, cpu, 1 thread)"
#: The share used where sysbench is not installed: measured on the 2-core AMD EPYC this
#: was built on (4,425 events/s) -> 0.334.
FALLBACK_SHARE = 0.334
#: The cgroup's period; the quota is share x period.
PERIOD_US = 100_000
#: Environment variable a child sees when it already runs inside the budget.
ENV_MARK = "KIOSK_PI4_BUDGET"
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
    """A child cgroup with `share` of one CPU. `argv_prefix()` runs a command in it."""

    def __init__(self, share: float, cpu: int | None = None) -> None:
        if not 0.01 <= share <= 1.0:
            raise BudgetError(f"share {share}: expected 0.01 to 1.0 of one core")
        if os.geteuid() != 0:
            raise BudgetError("a cgroup CPU budget needs root")
        self.share = share
        self.cpu = cpu if cpu is not None else max(os.sched_getaffinity(0))
        self.path = self._make(f"kiosk-pi4-{uuid.uuid4().hex[:8]}")

    def _make(self, name: str) -> Path:
        quota = int(self.share * PERIOD_US)
        v2 = Path("/sys/fs/cgroup")
        if (v2 / "cgroup.controllers").exists() and "cpu" in (v2 / "cgroup.controllers").read_text().split():
            # cgroup v2 (the unified hierarchy at the top): enable cpu for children.
            try:
                (v2 / "cgroup.subtree_control").write_text("+cpu")
            except OSError:
                pass
            path = v2 / name
            path.mkdir()
            (path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            self.procs = path / "cgroup.procs"
            return path
        v1 = Path("/sys/fs/cgroup/cpu")
        if (v1 / "cpu.cfs_quota_us").exists():
            path = v1 / name
            path.mkdir()
            (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (path / "cpu.cfs_quota_us").write_text(str(quota))
            self.procs = path / "cgroup.procs"
            return path
        raise BudgetError("no cgroup cpu controller (neither v2 cpu.max nor v1 cpu.cfs_quota_us)")

    def run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        """Run argv inside the budget (placed in the cgroup before it execs), one CPU."""
        procs, cpu = str(self.procs), self.cpu

        def enter() -> None:
            with open(procs, "w") as fh:
                fh.write(str(os.getpid()))
            os.sched_setaffinity(0, {cpu})

        env = {**os.environ, ENV_MARK: f"{self.share:.3f}", **kwargs.pop("env", {})}
        return subprocess.run(argv, preexec_fn=enter, env=env, **kwargs)

    def close(self) -> None:
        try:
            self.path.rmdir()
        except OSError:
            pass

    def __enter__(self) -> "CpuBudget":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def calibrate(seconds: int = CALIBRATE_S) -> tuple[float | None, float]:
    host = sysbench_rate(seconds)
    return host, pi4_share(host)


def calibration_table(seconds: int = CALIBRATE_S) -> str:
    host, share = calibrate(seconds)
    rows = ["| where | sysbench cpu, 1 thread (events/s) | ratio to a Pi 4 |", "|---|---:|---:|",
            f"| Raspberry Pi 4 (published) | {PI4_SYSBENCH_EVENTS_S:,.2f} | 1.00x |"]
    if host is not None:
        rows.append(f"| this machine, one core | {host:,.2f} | {host / PI4_SYSBENCH_EVENTS_S:.2f}x |")
        with CpuBudget(share) as budget:
            exe = shutil.which("sysbench")
            out = budget.run([exe, "cpu", "--threads=1", f"--time={seconds}", "run"],
                             capture_output=True, text=True, check=True).stdout
        inside = float(re.search(r"events per second:\s*([\d.]+)", out)[1])
        rows.append(f"| this machine in the budget ({share:.3f} of a core) | {inside:,.2f} | "
                    f"{inside / PI4_SYSBENCH_EVENTS_S:.2f}x |")
    else:
        rows.append(f"| this machine | (sysbench not installed: share {share}) | |")
    return f"Pi 4 budget: {share:.3f} of one core (source: {PI4_SOURCE})\n\n" + "\n".join(rows)


def in_budget() -> float | None:
    """The share this process runs under (None: not inside a Pi budget)."""
    mark = os.environ.get(ENV_MARK)
    return float(mark) if mark else None


def run_self_under_budget(argv: list[str], *, strip: str = "--pi4") -> int:
    """Re-run this script (sys.argv[0] with `argv` minus `strip`) inside a Pi 4 budget;
    returns its exit code. Prints the calibration first."""
    print(calibration_table(), flush=True)
    print(flush=True)
    _, share = calibrate()
    with CpuBudget(share) as budget:
        child = [sys.executable, sys.argv[0], *[a for a in argv if a != strip]]
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
    ap.add_argument("--calibrate", action="store_true", help="print the calibration table and exit")
    args = ap.parse_args(argv)
    try:
        if args.calibrate or not cmd:
            print(calibration_table())
            return 0
        share = args.share or calibrate()[1]
        with CpuBudget(share) as budget:
            print(f"pibudget: {share:.3f} of CPU {budget.cpu} ({budget.path})", file=sys.stderr, flush=True)
            return budget.run(cmd).returncode
    except BudgetError as exc:
        print(f"pibudget: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
