"""Unit tests of the framework-free core: settings, validation parity, parsing, rate limit, jobs, registry."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from servers.errors import ApiError, ValidationFailed
from servers.jobs import JobStore
from servers.models import AnalyseRequest
from servers.parsing import parse_analysis
from servers.ratelimit import RateLimiter
from servers.settings import RateLimit, SettingsError, load_settings, parse_rate_limit
from servers.sqlite_db import SharedDb
from servers.validation import parse_body, validate_request
from servers.variants import VARIANTS, UnknownVariantError, Variant, get_variant

VALID = {"text": "a valid text to analyse", "analysis_type": "summary"}

# (body bytes, content type): the corpus both adapters must answer identically.
BODIES: list[tuple[bytes, str | None]] = [
    (json.dumps(VALID).encode(), "application/json"),
    (b'{"text": "short", "analysis_type": "summary"}', "application/json"),
    (b'{"text": "            ", "analysis_type": "summary"}', "application/json"),
    (b'{"text": "a valid text here", "analysis_type": "x", "max_findings": 0}', "application/json"),
    (b'{"text": "a valid text here", "analysis_type": "summary", "max_findings": "abc"}', "application/json"),
    (b'{"text": "a valid text here", "analysis_type": "summary", "max_findings": 1.5}', "application/json"),
    (b'{"text": "a valid text here", "analysis_type": "summary", "max_findings": 51}', "application/json"),
    (
        b'{"text": "a valid text here", "analysis_type": "summary", "output_format": "xml"}',
        "application/json",
    ),
    (b'{"text": 5, "analysis_type": "summary"}', "application/json"),
    (b"{}", "application/json"),
    (b"[]", "application/json"),
    (b"null", "application/json"),
    (b"", "application/json"),
    (b"{bad", "application/json"),
    (b'{"text": "a valid text here", "analysis_type": "summary"}', "text/plain"),
    (b'{"text": "a valid text here", "analysis_type": "summary"}', None),
    (b"\xff\xfe", "application/json"),
    (b'{"text": "\xff\xfe\xfd invalid utf8", "analysis_type": "summary"}', "application/json"),
    (b'{"text": "a valid text here", "analysis_type": "summary"}', "application/vnd.api+json"),
    (json.dumps({**VALID, "text": "x" * 50_001}).encode(), "application/json"),
]


def _core_answer(body: bytes, content_type: str | None) -> tuple[int, Any]:
    try:
        validate_request(parse_body(body, content_type))
    except ValidationFailed as exc:
        return 422, json.loads(exc.body())
    except ApiError as exc:
        return exc.status, json.loads(exc.body())
    return 200, None


@pytest.fixture(scope="module")
def fastapi_validation_client() -> TestClient:
    """FastAPI's own validation, with the default error rendering, as the reference."""
    app = FastAPI()

    @app.post("/a")
    async def a(req: AnalyseRequest) -> dict[str, bool]:
        return {"ok": True}

    return TestClient(app)


@pytest.mark.parametrize(("body", "content_type"), BODIES, ids=[str(i) for i in range(len(BODIES))])
def test_flask_validation_copies_fastapi(
    fastapi_validation_client: TestClient, body: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    reference = fastapi_validation_client.post("/a", content=body, headers=headers)
    status, payload = _core_answer(body, content_type)
    assert status == reference.status_code
    if status == 422:
        assert payload == reference.json()
    elif status == 400:
        assert payload["detail"] == reference.json()["detail"]


def test_text_is_stripped() -> None:
    req = validate_request({"text": "   padded text here   ", "analysis_type": "entities"})
    assert req.text == "padded text here"
    assert req.output_format == "json" and req.max_findings == 10


def test_settings_defaults_and_errors(tmp_path: Path) -> None:
    s = load_settings({"BENCH_JOB_DB": str(tmp_path / "j.db")})
    assert s.api_tokens == ("bench-local-token",)
    assert s.rate_limit is not None and s.rate_limit.limit == 600 and s.rate_limit.period_s == 60
    assert s.upstream_max_retries == 2
    assert load_settings({"BENCH_RATE_LIMIT": "off", "BENCH_JOB_DB": "x"}).rate_limit is None
    for key, value in [
        ("BENCH_RATE_LIMIT", "many"),
        ("BENCH_UPSTREAM_TIMEOUT_S", "soon"),
        ("BENCH_UPSTREAM_MAX_RETRIES", "-1"),
        ("BENCH_UPSTREAM_URL", "ftp://x"),
        ("BENCH_API_TOKENS", " , "),
        ("BENCH_JOB_TTL_S", "-5"),
    ]:
        with pytest.raises(SettingsError, match=key):
            load_settings({key: value})
    for key in ("BENCH_UPSTREAM_DEADLINE_S", "BENCH_UPSTREAM_TIMEOUT_S", "BENCH_WS_IDLE_TIMEOUT_S"):
        for bad in ("inf", "nan", "-1"):
            with pytest.raises(SettingsError, match=key):
                load_settings({"BENCH_JOB_DB": str(tmp_path / "j.db"), key: bad})


def test_parse_rate_limit() -> None:
    assert parse_rate_limit("5/minute") == RateLimit(limit=5, period_s=60.0, text="5/minute")
    assert parse_rate_limit("1000000/minute") is not None
    assert parse_rate_limit("10 / seconds") == RateLimit(limit=10, period_s=1.0, text="10 / seconds")


def test_parse_analysis_accepts_wrapped_json_and_rejects_garbage() -> None:
    obj = '{"summary": "s", "findings": [{"title": "t", "detail": "d", "severity": "low"}]}'
    text = f"Here you go:\n```json\n{obj}\n```"
    assert parse_analysis(text).findings[0].severity == "low"
    with pytest.raises(ApiError) as info:
        parse_analysis("no json at all")
    assert info.value.status == 502 and info.value.error == "upstream_bad_answer"


def test_rate_limiter_burst_then_refill(tmp_path: Path) -> None:
    limiter = RateLimiter(SharedDb(tmp_path / "r.db"), RateLimit(limit=5, period_s=60.0, text="5/minute"))
    now = 1_000_000.0
    results = [limiter.check("k", now=now).allowed for _ in range(7)]
    assert results == [True] * 5 + [False] * 2
    denied = limiter.check("k", now=now)
    assert denied.retry_after_s == 12  # one interval (60/5 s) until the next slot frees up
    assert limiter.check("k", now=now + 12.0).allowed
    assert limiter.check("other", now=now).allowed  # per token


def test_rate_limiter_and_job_store_are_cheap(tmp_path: Path) -> None:
    db = SharedDb(tmp_path / "c.db")
    limiter = RateLimiter(db, RateLimit(limit=1_000_000, period_s=60.0, text="1000000/minute"))
    jobs = JobStore(db, ttl_s=60)
    limiter.check("warm")
    n = 300
    start = time.perf_counter()
    for _ in range(n):
        limiter.check("k")
    per_check = (time.perf_counter() - start) / n
    job_id = jobs.create("owner")
    start = time.perf_counter()
    for _ in range(n):
        jobs.get(job_id, "owner")
    per_get = (time.perf_counter() - start) / n
    # Typically 20-60 us; the bound leaves room for a loaded machine.
    assert per_check < 0.002, per_check
    assert per_get < 0.002, per_get


def test_job_store_isolation_and_expiry(tmp_path: Path) -> None:
    db = SharedDb(tmp_path / "j.db")
    store = JobStore(db, ttl_s=0.2, purge_every_s=0.0)
    job_id = store.create("alice")
    assert len(job_id) >= 20
    assert store.get(job_id, "bob") is None
    record = store.get(job_id, "alice")
    assert record is not None and record.status == "queued"
    store.mark_running(job_id)
    store.finish(job_id, b'{"summary": "s"}')
    record = store.get(job_id, "alice")
    assert record is not None and record.as_dict() == {
        "job_id": job_id,
        "status": "done",
        "result": {"summary": "s"},
    }
    failed = store.create("alice")
    store.fail(failed, {"status": 503, "error": "upstream_overloaded", "detail": "x"})
    failed_record = store.get(failed, "alice")
    assert failed_record is not None and failed_record.error == {
        "status": 503,
        "error": "upstream_overloaded",
        "detail": "x",
    }
    time.sleep(0.3)
    assert store.get(job_id, "alice") is None  # expired
    store.create("alice")  # creating purges expired rows
    assert db.run(lambda c: c.execute("SELECT count(*) FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]) == 0


def test_a_job_never_outlives_its_deadline_or_its_worker(tmp_path: Path) -> None:
    import subprocess
    import sys

    from servers.jobs import JOB_TIMEOUT, WORKER_LOST

    db = SharedDb(tmp_path / "d.db")
    store = JobStore(db, ttl_s=0.5, deadline_s=0.2, purge_every_s=0.0)
    stuck = store.create("alice")
    assert store.mark_running(stuck)
    time.sleep(0.3)
    record = store.get(stuck, "alice")
    assert record is not None and (record.status, record.error) == ("failed", JOB_TIMEOUT)
    store.finish(stuck, b'{"late": true}')  # the worker's late word does not undo the verdict
    assert store.get(stuck, "alice").status == "failed"  # type: ignore[union-attr]
    assert not store.mark_running(stuck)  # nor does a queued job failed meanwhile start

    # A worker process that dies with its job: the next poll (from any process) fails the job.
    code = (
        "import sys; from pathlib import Path; from servers.jobs import JobStore; "
        "from servers.sqlite_db import SharedDb; "
        "print(JobStore(SharedDb(Path(sys.argv[1])), ttl_s=60).create('bob'))"
    )
    worker = subprocess.Popen([sys.executable, "-c", code, str(db.path)], stdout=subprocess.PIPE, text=True)
    orphan = worker.communicate(timeout=60)[0].strip()
    assert worker.returncode == 0
    record = JobStore(db, ttl_s=60).get(orphan, "bob")
    assert record is not None and (record.status, record.error) == ("failed", WORKER_LOST)
    mine = JobStore(db, ttl_s=60).create("bob")  # this process lives: its job stays queued
    assert JobStore(db, ttl_s=60).get(mine, "bob").status == "queued"  # type: ignore[union-attr]

    time.sleep(0.6)  # past the ttl: failed and never-finished rows are purged
    store.create("alice")
    assert db.run(lambda c: c.execute("SELECT count(*) FROM jobs WHERE id = ?", (stuck,)).fetchone()[0]) == 0


_JOB_SCRIPT = """
import sys
from pathlib import Path
from servers.jobs import JobStore
from servers.sqlite_db import SharedDb
store = JobStore(SharedDb(Path(sys.argv[1])), ttl_s=60)
if sys.argv[2] == "create":
    print(store.create("carol", runs_here=False))
else:
    assert store.mark_running(sys.argv[2])
"""


def test_a_job_queued_for_another_process_watches_the_one_that_runs_it(tmp_path: Path) -> None:
    """A Celery job: the web process that queued it may be gone (nothing is watched while the job waits
    in the broker); the process that marks it running is the one watched from then on."""
    import subprocess
    import sys

    from servers.jobs import WORKER_LOST

    db = SharedDb(tmp_path / "c.db")

    def in_another_process(arg: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _JOB_SCRIPT, str(db.path), arg], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    job_id = in_another_process("create")  # that process has exited: its job must not be "lost"
    store = JobStore(db, ttl_s=60)
    assert store.get(job_id, "carol").status == "queued"  # type: ignore[union-attr]
    in_another_process(job_id)  # a worker process marks it running, then dies
    record = store.get(job_id, "carol")
    assert record is not None and (record.status, record.error) == ("failed", WORKER_LOST)


def test_job_slots_bound_background_work() -> None:
    from servers.jobs import JobSlots

    slots = JobSlots(2)
    assert [slots.try_acquire() for _ in range(3)] == [True, True, False]
    slots.release()
    assert slots.try_acquire() and not slots.try_acquire()


def test_registry() -> None:
    names = [v.name for v in VARIANTS]
    assert names == [
        "flask-sync",
        "flask-gthread",
        "flask-gevent",
        "flask-async-views",
        "fastapi-async",
        "fastapi-def",
        "fastapi-blocking",
        "fastapi-workers",
        "flask-granian",
        "fastapi-granian",
        "fastapi-gunicorn-asgi",
        "fastapi-shedding",
        "flask-sync-64",
        "quart-async",
        "flask-asgiref",
        "flask-a2wsgi",
        "flask-celery",
        "flask-celery-threads",
    ]
    assert get_variant("fastapi-def").predicted_ceiling == 40


@pytest.mark.parametrize("variant", ["flask-celery", "flask-celery-threads"])
def test_the_celery_variants_serve_flask_syncs_web_tier(variant: str) -> None:
    """Only the job tier is added: the web tier is flask-sync's, server settings and all."""
    celery, sync = get_variant(variant), get_variant("flask-sync")

    def web_tier(v: Variant) -> tuple[object, ...]:
        return (v.framework, v.server, v.worker_class, v.workers, v.threads, v.predicted_ceiling)

    assert web_tier(celery) == web_tier(sync)
    assert celery.broker == "redis" and sync.broker is None
    assert celery.app_target != sync.app_target  # the entry point that hands POST /analyse/async to Celery


def test_the_adapter_pair_differs_only_in_the_adapter() -> None:
    asgiref, a2wsgi = get_variant("flask-asgiref"), get_variant("flask-a2wsgi")
    assert (asgiref.app_target, asgiref.server, asgiref.workers) == (a2wsgi.app_target, a2wsgi.server, 1)
    assert (asgiref.mode, a2wsgi.mode) == ("asgiref", "a2wsgi")


@pytest.mark.parametrize(
    ("variant", "sibling"),
    [
        ("flask-granian", "flask-sync"),
        ("flask-sync-64", "flask-sync"),
        ("fastapi-granian", "fastapi-async"),
        ("fastapi-gunicorn-asgi", "fastapi-async"),
        ("fastapi-shedding", "fastapi-async"),
    ],
)
def test_a_new_variant_differs_from_its_sibling_only_in_how_it_is_served(variant: str, sibling: str) -> None:
    # "No code change": the same app module and the same code path; only the server's settings differ.
    new, old = get_variant(variant), get_variant(sibling)
    assert (new.framework, new.app_target, new.mode) == (old.framework, old.app_target, old.mode)
    assert (new.server, new.worker_class, new.workers, new.limit_concurrency) != (
        old.server,
        old.worker_class,
        old.workers,
        old.limit_concurrency,
    )


def test_unsupported_scenarios_are_data() -> None:
    granian = get_variant("flask-granian")
    assert not granian.supports("chat") and granian.supports("stream") and granian.supports("jobs")
    assert "chat" not in granian.scenarios and dict(granian.unsupported)["chat"]
    assert all(get_variant(n).supports("chat") for n in ("fastapi-granian", "fastapi-gunicorn-asgi"))


def test_unknown_variant_is_refused() -> None:
    with pytest.raises(UnknownVariantError, match="flask-sync"):
        get_variant("flask-turbo")


@pytest.mark.parametrize("mode", ["async", "def", "blocking"])
def test_fastapi_keeps_docs_and_openapi(tmp_path: Path, mode: str) -> None:
    from servers.fastapi_app import create_app

    settings = load_settings({"BENCH_JOB_DB": str(tmp_path / "j.db"), "BENCH_VARIANT": f"fastapi-{mode}"})
    with TestClient(create_app(settings, mode=mode)) as client:  # type: ignore[arg-type]
        schema = client.get("/openapi.json").json()
        assert {"/analyse", "/analyse/stream", "/analyse/async", "/jobs/{job_id}", "/health"} <= set(
            schema["paths"]
        )
        assert "AnalyseRequest" in schema["components"]["schemas"]
        assert client.get("/docs").status_code == 200
