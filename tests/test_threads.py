"""focal_loss_layer.threads: the thread count (FOCAL_LOSS_NUM_THREADS, affinity, cgroup quota) and
running a pass split across threads, which must end every worker before an error or Ctrl-C leaves."""
import json
import os
import signal
import threading
import time

import numpy as np
import pytest
from cases import make_case

from focal_loss_layer import threads
from focal_loss_layer.errors import ParamError
from focal_loss_layer.fast import PARALLEL_MIN_SIZE, FocalLossKernel
from focal_loss_layer.params import parse_param_str


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("value, expected", [("1", 1), ("3", 3), (" 2 ", 2), ("007", 7)])
def test_env_var_sets_the_thread_count(monkeypatch, value, expected):
    monkeypatch.setenv(threads.ENV_VAR, value)
    assert threads.thread_limit() == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_env_var_names_itself_and_what_is_allowed(monkeypatch, value):
    monkeypatch.setenv(threads.ENV_VAR, value)
    with pytest.raises(ParamError, match=f"FOCAL_LOSS_NUM_THREADS='{value}' is not allowed: "
                                         "it must be a whole number >= 1"):
        threads.thread_limit()


@pytest.mark.parametrize("value, shown", [
    ("\u00b2", "'\u00b2'"),                         # str.isdigit() says yes, int() says no
    ("\u0663", "'\u0663'"),                         # int() reads it as 3: still not ASCII
    ("1" * 5000, "'" + "1" * 59 + "... (5002 characters)"),   # past int()'s 4300 digits
    ("1" * 19, "'" + "1" * 19 + "'"),
], ids=["superscript-two", "arabic-indic-three", "5000-digits", "19-digits"])
def test_an_env_var_of_other_digits_is_a_param_error_naming_it(monkeypatch, value, shown):
    monkeypatch.setenv(threads.ENV_VAR, value)
    with pytest.raises(ParamError) as raised:
        threads.thread_limit()
    assert str(raised.value).startswith(
        f"FOCAL_LOSS_NUM_THREADS={shown} is not allowed: it must be a whole number >= 1 in ASCII "
        "digits, at most 18 of them")


def test_default_is_the_usable_cpus(monkeypatch):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    assert threads.thread_limit() == threads.usable_cpus()
    assert 1 <= threads.usable_cpus() <= len(os.sched_getaffinity(0))


def test_cgroup_v2_quota_is_the_tightest_along_the_path(tmp_path):
    write(tmp_path / "proc_cgroup", "0::/docker/abc\n")
    write(tmp_path / "fs" / "cpu.max", "max 100000\n")
    write(tmp_path / "fs" / "docker" / "cpu.max", "400000 100000\n")      # 4 CPUs on the parent
    write(tmp_path / "fs" / "docker" / "abc" / "cpu.max", "150000 100000\n")   # 1.5 CPUs
    quota = threads.cgroup_cpu_quota(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs"))
    assert quota == 1.5


def test_cgroup_v2_without_a_quota_is_unlimited(tmp_path):
    write(tmp_path / "proc_cgroup", "0::/user.slice\n")
    write(tmp_path / "fs" / "user.slice" / "cpu.max", "max 100000\n")
    assert threads.cgroup_cpu_quota(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")) is None


def test_cgroup_v1_quota(tmp_path):
    write(tmp_path / "proc_cgroup", "5:memory:/x\n4:cpu,cpuacct:/kubepods/pod1\n")
    folder = tmp_path / "fs" / "cpu,cpuacct" / "kubepods" / "pod1"
    write(folder / "cpu.cfs_quota_us", "200000\n")
    write(folder / "cpu.cfs_period_us", "100000\n")
    write(tmp_path / "fs" / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1\n")   # unlimited root
    write(tmp_path / "fs" / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    assert threads.cgroup_cpu_quota(str(tmp_path / "proc_cgroup"), str(tmp_path / "fs")) == 2.0


def test_no_cgroup_file_means_no_quota(tmp_path):
    assert threads.cgroup_cpu_quota(str(tmp_path / "missing"), str(tmp_path)) is None


def test_a_quota_below_the_affinity_caps_the_default(monkeypatch):
    monkeypatch.setattr(threads, "cgroup_cpu_quota", lambda: 0.5)
    threads.usable_cpus.cache_clear()
    try:
        assert threads.usable_cpus() == 1
    finally:
        threads.usable_cpus.cache_clear()


def large_case():
    settings = {"focusing_parameter": 1.5, "ignore_label": -1}
    rng = np.random.default_rng(3)
    logits, labels = make_case(rng, "indices", shape=(2, 3, PARALLEL_MIN_SIZE // 3 + 17),
                               ignore_label=-1)
    return parse_param_str(json.dumps(settings)), logits.astype(np.float32), labels.astype(np.float32)


def loss_and_gradient(params, logits, labels):
    kernel = FocalLossKernel(params, logits.shape, labels.shape)
    loss = kernel.forward(logits, labels)
    grad = np.empty_like(logits)
    kernel.backward(1.0, grad)
    return kernel, loss, grad


def test_results_are_bit_identical_for_any_env_thread_count(monkeypatch):
    params, logits, labels = large_case()
    results = {}
    for count in ("1", "2", "3", "8"):
        monkeypatch.setenv(threads.ENV_VAR, count)
        kernel, loss, grad = loss_and_gradient(params, logits, labels)
        assert len(kernel._ranges) == int(count)
        results[count] = (loss, grad)
    for loss, grad in results.values():
        assert loss == results["1"][0]
        np.testing.assert_array_equal(grad, results["1"][1])


def test_one_thread_uses_no_pool(monkeypatch):
    monkeypatch.setenv(threads.ENV_VAR, "1")
    monkeypatch.setattr(threads, "_pools", {})
    params, logits, labels = large_case()
    before = threading.active_count()
    loss_and_gradient(params, logits, labels)
    assert threads._pools == {} and threading.active_count() == before


def slow_writers(out, calls_left_running):
    """A pass whose workers write into `out` for 0.3 s after the calling thread's part fails."""
    def part(index, fail):
        if fail:
            time.sleep(0.05)
            raise fail
        time.sleep(0.3)
        out[index] = 1.0
        calls_left_running.append(index)
    return part


@pytest.mark.parametrize("failure", [ValueError("injected"), KeyboardInterrupt()])
def test_an_error_in_the_calling_thread_waits_for_every_worker(failure):
    out = np.zeros(4)
    finished = []
    with pytest.raises(type(failure)):
        threads.run_split(slow_writers(out, finished),
                          [(0, None), (1, None), (2, None), (3, failure)])
    # Control is back: every worker must already have written, none may write later.
    assert sorted(finished) == [0, 1, 2]
    snapshot = out.copy()
    time.sleep(0.4)
    np.testing.assert_array_equal(out, snapshot)


@pytest.fixture
def ctrl_c_raises():
    """SIGINT raises KeyboardInterrupt, as in a terminal, for this test. A process started in
    the background by a non-interactive shell (`make test &`, nohup) inherits SIGINT ignored,
    and Python then leaves it ignored: the signal would never reach run_split."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_the_wait_is_raised_after_the_workers_end(ctrl_c_raises):
    """A real SIGINT while the calling thread waits for the workers."""
    out = np.zeros(3)
    finished = []
    sent = threading.Event()
    def part(index):
        if index == 2:
            return                       # the calling thread's part ends at once, then waits
        # The workers outlast the signal whatever the machine's load: they end only after it.
        sent.wait(10)
        time.sleep(0.1)
        out[index] = 1.0
        finished.append(index)
    def interrupt():
        os.kill(os.getpid(), signal.SIGINT)
        sent.set()
    timer = threading.Timer(0.1, interrupt)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        threads.run_split(part, [(0,), (1,), (2,)])
    timer.join()
    assert sorted(finished) == [0, 1] and out[:2].tolist() == [1.0, 1.0]


def test_a_worker_error_is_raised_after_the_others_end():
    finished = []
    def part(index):
        if index == 0:
            raise ValueError("worker failed")
        time.sleep(0.2)
        finished.append(index)
    with pytest.raises(ValueError, match="worker failed"):
        threads.run_split(part, [(0,), (1,), (2,)])
    assert sorted(finished) == [1, 2]
