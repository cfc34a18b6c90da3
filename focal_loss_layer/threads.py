"""How many threads a pass may use, and running a pass split across them.

    FOCAL_LOSS_NUM_THREADS=N   cap the threads (1: the calling thread only, no pool is made)

Default: the CPUs this process may use, the smaller of its CPU affinity (taskset, cpusets) and
its cgroup CPU quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`, rounded up): a container limited
to 2 CPUs on a 64-core host runs 2 threads, not 64. Results never depend on the count
(focal_loss_layer.kernels sums per-block partials in a fixed order).
"""
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor, wait
from functools import lru_cache
from typing import Dict, Optional

from .errors import ParamError
from .params import short_repr

ENV_VAR = "FOCAL_LOSS_NUM_THREADS"

_pools: Dict[int, ThreadPoolExecutor] = {}   # by worker count, made on first use
if hasattr(os, "register_at_fork"):
    # A forked child has none of the parent's threads: its pools would wait forever.
    os.register_at_fork(after_in_child=_pools.clear)


def thread_limit() -> int:
    """FOCAL_LOSS_NUM_THREADS if set (ParamError unless a whole number ≥ 1), else usable_cpus()."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return usable_cpus()
    # ASCII digits only: str.isdigit() also takes '²', which int() refuses. At most 18 digits:
    # int() of over 4300 raises, and a pass never uses more threads than it has blocks anyway.
    if re.fullmatch("0*[0-9]{1,18}", text) and int(text) >= 1:
        return int(text)
    raise ParamError(f"{ENV_VAR}={short_repr(text)} is not allowed: it must be a whole number >= 1 "
                     f"in ASCII digits, at most 18 of them (1 = no extra threads), or unset for "
                     f"the CPUs this process may use ({usable_cpus()} here)")


@lru_cache(maxsize=None)
def usable_cpus() -> int:
    """min(CPU affinity, cgroup CPU quota), at least 1."""
    affinity = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1)
    quota = cgroup_cpu_quota()
    return max(1, affinity if quota is None else min(affinity, math.ceil(quota)))


def cgroup_cpu_quota(proc_cgroup: str = "/proc/self/cgroup",
                     cgroup_root: str = "/sys/fs/cgroup") -> Optional[float]:
    """CPUs' worth of time the cgroup quota allows (quota / period), the tightest along the
    process's cgroup and its ancestors (a limit set on a parent applies too); None if unlimited
    or unreadable."""
    try:
        with open(proc_cgroup) as f:
            entries = [line.rstrip("\n").split(":", 2) for line in f if line.count(":") >= 2]
    except OSError:
        return None
    limits = []
    for _, controllers, path in entries:
        if controllers == "":                                     # cgroup v2: "0::/path"
            limits += _along_path(cgroup_root, path, _v2_limit)
        elif "cpu" in controllers.split(","):                     # cgroup v1: "4:cpu,cpuacct:/path"
            for mount in ("cpu,cpuacct", "cpu", "cpuacct,cpu"):
                if os.path.isdir(os.path.join(cgroup_root, mount)):
                    limits += _along_path(os.path.join(cgroup_root, mount), path, _v1_limit)
                    break
    return min(limits) if limits else None


def _along_path(root, path, read_limit):
    """Limits read in root/path and each ancestor folder up to root (those that are set)."""
    parts = [p for p in path.split("/") if p]
    folders = [os.path.join(root, *parts[:k]) for k in range(len(parts), -1, -1)]
    return [limit for limit in map(read_limit, folders) if limit is not None]


def _v2_limit(folder):
    fields = _read(os.path.join(folder, "cpu.max")).split()
    if len(fields) == 2 and fields[0] != "max":
        return _ratio(fields[0], fields[1])
    return None


def _v1_limit(folder):
    return _ratio(_read(os.path.join(folder, "cpu.cfs_quota_us")),
                  _read(os.path.join(folder, "cpu.cfs_period_us")))


def _ratio(quota, period):
    try:
        quota, period = int(quota), int(period)
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def run_split(function, argument_lists) -> None:
    """function(*arguments) for each list at once: all but the last on a pool of threads, the
    last on the calling thread. Returns only when every call has ended, also when one raises or
    Ctrl-C arrives: the calls write into the caller's buffers (Caffe's blobs), which must not
    change after control leaves the pass. The first error is re-raised."""
    workers = len(argument_lists) - 1
    if workers == 0:
        function(*argument_lists[0])
        return
    if workers not in _pools:
        _pools[workers] = ThreadPoolExecutor(workers, thread_name_prefix="focal_loss")
    futures = [_pools[workers].submit(function, *arguments) for arguments in argument_lists[:-1]]
    try:
        function(*argument_lists[-1])
    except BaseException:
        for future in futures:
            future.cancel()             # those not started yet never start
        raise
    finally:
        _wait_for_all(futures)
    for future in futures:
        future.result()


def _wait_for_all(futures) -> None:
    """Wait for every future; a KeyboardInterrupt during the wait is held back until they end."""
    interrupted = None
    while True:
        try:
            wait(futures)
            break
        except KeyboardInterrupt as interrupt:
            interrupted = interrupt
    if interrupted is not None:
        raise interrupted
