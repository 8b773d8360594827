"""The CPU budget's classification and arithmetic (loadtests/analysis/cpu_budget.py): py-spy's collapsed
stacks
in, components out; the stacks below are shaped as py-spy 0.4 prints them (``--subprocesses --threads``)."""

from __future__ import annotations

import pytest

from loadtests.analysis.cpu_budget import (
    Frame,
    ThreadTime,
    budget,
    classify,
    parse_collapsed,
    parse_frame,
    top_unclassified,
    unseen_processes,
)

UVICORN_ROOT = (
    "<module> (servers/__main__.py:3);main (servers/cli.py:88);run (uvicorn/main.py:580);"
    "run (uvicorn/server.py:67);run (asyncio/runners.py:190);run_until_complete (asyncio/base_events.py:640)"
)


def frames(text: str) -> list[Frame]:
    return [parse_frame(part) for part in text.split(";")]


def test_a_collapsed_line_gives_its_process_thread_frames_and_count() -> None:
    text = (
        'process 100:"python -m servers run flask-sync";process 104:"gunicorn: worker [app]";'
        "thread (104);run (gunicorn/arbiter.py:201);handle (gunicorn/workers/sync.py:135);"
        "dumps (json/__init__.py:231) 17\n"
        'process 100:"python -m servers run flask-sync";thread (100);<native> 3\n'
    )
    first, second = parse_collapsed(text)
    assert (first.pid, first.tid, first.count) == (104, "104", 17)  # the innermost process is the sampled one
    assert [f.module for f in first.frames] == ["gunicorn", "gunicorn", "json"]
    assert first.frames[-1] == Frame(name="dumps", file="json/__init__.py", line=231)
    assert (second.pid, second.count, second.frames[0].file) == (100, 3, "")


def test_a_line_that_is_not_a_collapsed_stack_is_refused() -> None:
    with pytest.raises(ValueError, match="collapsed-stack"):
        parse_collapsed("Sampling process 100 times a second\n")


@pytest.mark.parametrize(
    ("stack", "component"),
    [
        # the standard library is charged to its nearest owned caller
        ("send (httpcore2/_backends/sync.py:40);sendall (socket.py:10)", "http_client"),
        (f"{UVICORN_ROOT};_run_once (asyncio/base_events.py:1900);select (selectors.py:468)", "server"),
        ("info (servers/service.py:40);_log (logging/__init__.py:1600)", "app"),
        # json is owned even though the standard library ships it: the innermost owner wins
        ("render (starlette/responses.py:190);dumps (json/__init__.py:231);encode (json/encoder.py:20)",
         "json"),
        ("analyse (servers/service.py:60);model_validate (pydantic/main.py:700)", "validation"),
        ("create (anthropic/resources/messages.py:900);_post (anthropic/_base_client.py:1200)", "sdk"),
        # h11 parses requests for hypercorn and responses for httpcore2: its caller decides
        ("handle (hypercorn/protocol/h11.py:120);next_event (h11/_connection.py:400)", "server"),
        ("_receive (httpcore2/_sync/http11.py:200);next_event (h11/_connection.py:400)", "http_client"),
        ("__call__ (starlette/routing.py:70);run_sync (anyio/to_thread.py:50)", "framework"),
        # no owner on the stack: the transparent module's fallback
        ("run (gevent/hub.py:600);wait (gevent/_hub_primitives.py:40)", "server"),
        ("_bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:80)", "runtime"),
        # an import is runtime, whatever module body it runs
        ("handler (servers/app.py:9);_find_and_load (<frozen importlib._bootstrap>:1176);"
         "<module> (pydantic/v1.py:3)", "runtime"),
        ("frob (mystery_lib/core.py:3)", "other"),
        ("view (flask/app.py:900);frob (mystery_lib/core.py:3);sendall (socket.py:10)", "other"),
    ],
)  # fmt: skip
def test_a_sample_goes_to_its_innermost_owned_frame(stack: str, component: str) -> None:
    assert classify(frames(stack)) == component


def test_a_thread_with_no_python_frame_is_runtime_and_app_modules_can_be_named() -> None:
    assert classify([]) == "runtime"
    assert classify(frames("handle (myapp/views.py:3)")) == "other"
    assert classify(frames("handle (myapp/views.py:3)"), app_modules=["myapp"]) == "app"


def _stacks(counts: dict[str, int], *, pid: int = 7, tid: str = "71") -> str:
    lines = [f'process {pid}:"python";thread ({tid});{stack} {n}' for stack, n in counts.items()]
    return "\n".join(lines) + "\n"


def test_each_thread_s_cpu_is_split_as_its_samples_fell_and_the_sum_is_checked_against_psutil() -> None:
    text = _stacks({"view (flask/app.py:1)": 300, "create (anthropic/_client.py:1)": 100}, tid="71")
    text += _stacks({"send (httpcore2/_sync/x.py:1)": 500}, tid="72")
    threads = [
        ThreadTime(pid=7, tid="71", on_cpu_s=4.0, run_queue_s=0.0),
        ThreadTime(pid=7, tid="72", on_cpu_s=6.0, run_queue_s=0.0),
    ]
    # 10 s of CPU against psutil's 10.5 over the same interval; 5.25 ms per request in the point's window,
    # so each second of CPU is 0.5 ms per request.
    result = budget(parse_collapsed(text), ticks=1000, elapsed_s=10, interval_cpu_s=10.5,
                    cpu_ms_per_request=5.25, threads=threads)  # fmt: skip
    assert result.components_ms["framework"] == pytest.approx(1.5)  # 3/4 of thread 71's 4 s
    assert result.components_ms["sdk"] == pytest.approx(0.5)
    assert result.components_ms["http_client"] == pytest.approx(3.0)  # all of thread 72's 6 s
    assert result.samples == 900 and result.classified_share == 1.0 and result.by_process == {7: 900}
    assert result.budget_error == pytest.approx(10.0 / 10.5 - 1, abs=1e-4)
    assert result.adds_up
    # Thread 71 was in R (on a CPU) 40 % of the time and in 40 % of the rounds; 72, 60 % and 50 %.
    assert result.sampling_ratio == pytest.approx(900 / 1000)


def test_threads_py_spy_never_named_are_native_server_threads_or_pool_over_unmatched_samples() -> None:
    text = _stacks({"view (flask/app.py:1)": 100}, tid="71")
    native = [
        ThreadTime(pid=7, tid="71", on_cpu_s=2.0, run_queue_s=1.0),
        ThreadTime(pid=7, tid="73", on_cpu_s=1.0, run_queue_s=0.0),  # Rust runtime: never sampled
        ThreadTime(pid=9, tid="90", on_cpu_s=5.0, run_queue_s=0.0),  # a process py-spy never sampled
    ]
    result = budget(parse_collapsed(text), ticks=100, elapsed_s=10, interval_cpu_s=8.0,
                    cpu_ms_per_request=8.0, threads=native)  # fmt: skip
    assert result.components_ms["framework"] == pytest.approx(2.0)
    assert result.components_ms["server"] == pytest.approx(1.0) == result.native_ms
    # Process 9's 5 s is in psutil's 8 s but in no component: the budget is 62 % short.
    assert not result.adds_up and "62% less" in result.problems[0], result.problems
    # py-spy printed a Python thread id it could not map: the process's unnamed threads pool their CPU.
    unmapped = _stacks({"view (flask/app.py:1)": 30, "create (anthropic/_client.py:1)": 10}, tid="0x7F01")
    pooled = budget(parse_collapsed(text + unmapped), ticks=100, elapsed_s=10, interval_cpu_s=3.0,
                    cpu_ms_per_request=3.0, threads=native[:2])  # fmt: skip
    assert pooled.components_ms == pytest.approx(
        {**dict.fromkeys(pooled.components_ms, 0.0), "framework": 2.75, "sdk": 0.25}
    )
    assert pooled.native_ms == 0.0 and pooled.adds_up


def test_without_the_kernel_s_figures_a_sample_is_one_round_and_mostly_unknown_does_not_add_up() -> None:
    stacks = parse_collapsed(_stacks({"view (flask/app.py:1)": 850, "frob (mystery_lib/a.py:1)": 150}))
    result = budget(stacks, ticks=1000, elapsed_s=10, interval_cpu_s=8.0, cpu_ms_per_request=4.0)
    assert not result.adds_up  # 1,000 rounds of 10 ms: 10 s of CPU profiled, 8 measured
    assert any("10.00 s of CPU, 25% more than the 8.00 s" in p for p in result.problems), result.problems
    assert sum(result.components_ms.values()) == pytest.approx(5.0)  # 25 % over the measured 4 ms
    assert any("85% of the samples classified" in p for p in result.problems), result.problems
    assert top_unclassified(stacks) == [{"module": "mystery_lib", "samples": 150}]
    empty = budget([], ticks=1000, elapsed_s=10, interval_cpu_s=8.0, cpu_ms_per_request=4.0)
    assert not empty.adds_up and "no sample" in empty.problems[0]


def test_a_busy_process_with_no_sample_was_not_profiled() -> None:
    processes = [
        {"pid": 1, "name": "python", "cpu_s": 0.01},  # the idle launcher: too little CPU to matter
        {"pid": 2, "name": "gunicorn", "cpu_s": 2.0},
        {"pid": 3, "name": "redis-server", "cpu_s": 0.5},
    ]
    unseen = unseen_processes(processes, {2: 400})
    assert unseen == ["process 3 (redis-server) used 0.50 s of CPU and was never sampled"]
