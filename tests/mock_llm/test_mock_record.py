"""`python -m mock_llm record` recording the mock itself, then `--profile replay:FILE` replaying the file:
the recorded timings are the mock's, and the replay states how close it came (Kolmogorov-Smirnov)."""

from __future__ import annotations

import asyncio
import csv
import statistics
import subprocess
import time
from pathlib import Path

import anthropic
from mockkit import Mock, openai_client, running_mock, sdk_client

from loadtests.driver.processes import LOOPBACK, ManagedProcess, free_port, python_module_argv

MODEL = "claude-haiku-5-5"
CALLS = 30
MAX_TOKENS = 64  # short answers: about 0.5 s of generation at half speed, so the test stays short
# haiku-tail at half speed: TTFT median 365 ms, then 136 tokens/s.
RECORD_SCALE = 0.5
REPLAY_SCALE = 1.5


def _question(i: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"Question {i % 5}: what limits an async server?"}]


async def _streams(base_url: str, n: int) -> list[tuple[str, float]]:
    """n concurrent streams: each one's text and its time to first text as this client saw it."""
    async with anthropic.AsyncAnthropic(base_url=base_url, api_key="k") as sdk:

        async def one(i: int) -> tuple[str, float]:
            started = time.perf_counter()
            first = 0.0
            pieces = []
            async with sdk.messages.stream(
                model=MODEL, max_tokens=MAX_TOKENS, messages=_question(i)
            ) as stream:
                async for text in stream.text_stream:
                    first = first or time.perf_counter() - started
                    pieces.append(text)
            return "".join(pieces), first

        return list(await asyncio.gather(*(one(i) for i in range(n))))


def _record(upstream: Mock, out: Path, log_dir: Path) -> list[float]:
    """Calls through a recorder in front of ``upstream``; the client-side TTFT of the streamed ones."""
    port = free_port()
    argv = python_module_argv(
        "mock_llm", "record", "--upstream", upstream.base_url, "--out", str(out), "--port", str(port)
    )
    log = log_dir / "recorder.log"
    recorder = ManagedProcess("recorder", argv, log_path=log, ready_url=f"http://{LOOPBACK}:{port}/health")
    recorder.start(ready_timeout=60.0)
    try:
        proxy = f"http://{LOOPBACK}:{port}"
        streamed = asyncio.run(_streams(proxy, CALLS))
        direct = sdk_client(upstream.base_url).messages.create(
            model=MODEL, max_tokens=MAX_TOKENS, messages=_question(0)
        )
        assert streamed[0][0] == direct.content[0].text  # relayed byte for byte
        whole = sdk_client(proxy).messages.create(model=MODEL, max_tokens=MAX_TOKENS, messages=_question(1))
        assert whole.content[0].text
        chat = openai_client(proxy).chat.completions.create(
            model="gpt-x", messages=_question(2), max_tokens=MAX_TOKENS, stream=True,
            stream_options={"include_usage": True},
        )  # fmt: skip
        assert "".join(c.choices[0].delta.content or "" for c in chat if c.choices)
        list(
            openai_client(proxy).responses.create(
                model="gpt-x", input="hello", stream=True, max_output_tokens=64
            )
        )
        assert sdk_client(proxy, max_retries=0).messages.count_tokens(model=MODEL, messages=_question(3))
    finally:
        code = recorder.stop()
    assert code == 0 and f"{CALLS + 3} calls written to {out}" in log.read_text()  # SIGTERM: a clean stop
    return [first for _, first in streamed]


def test_record_the_mock_then_replay_the_file(mock_log_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "calls.csv"
    flags = ("--profile", "haiku-tail", "--time-scale", str(RECORD_SCALE), "--seed", "4")
    with running_mock(mock_log_dir, "mock-recorded", *flags) as upstream:
        seen_by_client = _record(upstream, out, mock_log_dir)
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    # 30 streams and one whole body on the Messages API, a chat stream, a response stream; no count_tokens.
    endpoints = [row["endpoint"] for row in rows]
    assert endpoints.count("/v1/messages") == CALLS + 1 and endpoints.count("/v1/chat/completions") == 1
    assert endpoints.count("/v1/responses") == 1 and "/v1/messages/count_tokens" not in endpoints
    streamed = [row for row in rows if row["endpoint"] == "/v1/messages" and row["stream"] == "True"]
    ttfts = [float(row["ttft_s"]) for row in streamed]
    rates = [float(row["tokens_per_s"]) for row in streamed]
    recorded, client = statistics.median(ttfts), statistics.median(seen_by_client)
    rate = statistics.median(rates)
    print(f"\nTTFT median: recorded {recorded:.3f} s, client {client:.3f} s; {rate:.0f} tokens/s")
    # Between what the mock injected (haiku-tail's median 0.73 s at half speed, 30 draws: within 15 %) and
    # what the client saw behind the proxy; the rate is the profile's 68 tokens/s at half speed.
    assert 0.85 * 0.73 * RECORD_SCALE <= recorded <= client
    assert min(ttfts) >= 0.73 / 3 * RECORD_SCALE
    assert 0.8 * 68 / RECORD_SCALE <= rate <= 1.05 * 68 / RECORD_SCALE
    assert all(row["output_tokens"] == str(MAX_TOKENS) for row in streamed)
    (whole,) = [row for row in rows if row["stream"] == "False"]
    assert float(whole["ttft_s"]) <= float(whole["total_s"]) and whole["tokens_per_s"] == ""

    replay = ("--profile", f"replay:{out}", "--time-scale", str(REPLAY_SCALE))
    with running_mock(mock_log_dir, "mock-replay", *replay) as replaying:
        asyncio.run(_streams(replaying.base_url, len(rows)))  # every record once, in turn
        stats = replaying.stats()
    assert stats["profile"] == f"replay:{out}" and stats["replay"]["replayed"] == len(rows)
    for measure in ("ttft_s", "total_s", "tokens_per_s"):
        ks = stats["replay"]["ks"][measure]
        print(f"replay {measure}: D = {ks['d']} (critical {ks['critical_05']}, n {ks['n']}, m {ks['m']})")
        assert ks["n"] >= len(streamed) and ks["d"] < ks["critical_05"] and ks["d_used"] <= 0.2, ks


def test_bad_record_flags_fail_with_one_line(tmp_path: Path) -> None:
    cases = [
        (("--upstream", "ftp://example.invalid", "--out", str(tmp_path / "a.csv")), "http(s):// URL"),
        (("--upstream", "http://127.0.0.1:9", "--out", str(tmp_path / "no" / "a.csv")), "no directory"),
        (("--out", str(tmp_path / "a.csv")), "--upstream"),
    ]
    for flags, fragment in cases:
        done = subprocess.run(
            python_module_argv("mock_llm", "record", "--port", "9", *flags),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 2 and fragment in done.stderr, (flags, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
