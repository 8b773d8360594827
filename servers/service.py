"""The framework-free application: what every adapter calls, whatever its concurrency model.

An adapter only turns HTTP into calls on :class:`Core` and its results (bytes, ApiError) back into HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import anthropic

from servers.errors import ApiError, job_not_found, rate_limited, unauthorized
from servers.jobs import JobSlots, JobStore
from servers.jsonio import render
from servers.models import AnalyseRequest
from servers.ratelimit import RateLimiter
from servers.settings import Settings
from servers.sqlite_db import SharedDb
from servers.upstream import analyse_async, analyse_sync

JOB_GRACE_S = 10.0


@dataclass(frozen=True, kw_only=True)
class Caller:
    """An authenticated caller: ``owner`` is a hash of the token (tokens are never stored)."""

    owner: str


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Core:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = SharedDb(settings.job_db)
        # A job's own upstream call ends by its deadline; the grace covers parsing and a busy machine.
        job_deadline_s = settings.upstream_deadline_s + JOB_GRACE_S
        self.jobs = JobStore(self.db, ttl_s=settings.job_ttl_s, deadline_s=job_deadline_s)
        self.slots = JobSlots(settings.max_background_jobs)
        self.limiter = RateLimiter(self.db, settings.rate_limit) if settings.rate_limit is not None else None
        self._tokens = tuple(t.encode() for t in settings.api_tokens)

    def identify(self, token: str | None) -> Caller:
        """401 unless the token is known."""
        if token is None:
            raise unauthorized()
        given = token.encode()
        # Compare against every token in constant time, so timing does not reveal a prefix.
        if not any(hmac.compare_digest(given, known) for known in self._tokens):
            raise unauthorized()
        return Caller(owner=hashlib.sha256(given).hexdigest()[:32])

    def check_rate(self, caller: Caller) -> None:
        """429 (with Retry-After) when the caller is over the rate limit; counts one request."""
        if self.limiter is not None:
            decision = self.limiter.check(caller.owner)
            if not decision.allowed:
                raise rate_limited(decision.retry_after_s, self.limiter.limit.text)

    def authenticate(self, token: str | None) -> Caller:
        caller = self.identify(token)
        self.check_rate(caller)
        return caller

    def authorize(self, authorization: str | None, query_token: str | None = None) -> Caller:
        return self.authenticate(self.token_of(authorization, query_token))

    @staticmethod
    def token_of(authorization: str | None, query_token: str | None = None) -> str | None:
        token = bearer_token(authorization)
        return token if token is not None else query_token

    def job_failed(self, job_id: str, error: ApiError) -> None:
        self.jobs.fail(job_id, error.as_dict())

    def admit_job(self, caller: Caller) -> str:
        """A new job's id, holding one of this process's background slots (503 when all are taken);
        the job runner gives the slot back."""
        if not self.slots.try_acquire():
            raise ApiError(
                status=503,
                error="jobs_busy",
                detail=f"This server already runs {self.slots.limit} background jobs; retry shortly",
                headers={"Retry-After": "1"},
            )
        try:
            return self.jobs.create(caller.owner)
        except BaseException:
            self.slots.release()
            raise


# --- WebSocket chat frames: answer chunks are text frames, then exactly one final JSON frame. ---

DONE_FRAME = render({"type": "done"}).decode()


def error_frame(error: ApiError) -> str:
    return render(
        {"type": "error", "status": error.status, "error": error.error, "detail": error.detail}
    ).decode()


def binary_refused() -> ApiError:
    return ApiError(
        status=422,
        error="invalid_message",
        detail="Binary frames are not supported: send the message as text",
    )


def chat_message(core: Core, caller: Caller, message: str | bytes) -> str:
    """Each chat message is a request of its own: text only, within the rate limit, not blank."""
    if not isinstance(message, str):
        raise binary_refused()
    core.check_rate(caller)
    return check_chat_message(message)


def internal_error() -> ApiError:
    return ApiError(status=500, error="internal_error", detail="The answer failed inside the server")


def check_chat_message(message: str) -> str:
    text = message.strip()
    if not text:
        raise ApiError(status=422, error="invalid_message", detail="Message must not be blank")
    if len(text) > 50_000:
        raise ApiError(status=422, error="invalid_message", detail="Message must be at most 50000 characters")
    return text


# --- Background jobs: the same steps whether a thread, a greenlet or an asyncio task runs them. ---


def run_job_sync(core: Core, client: anthropic.Anthropic, job_id: str, req: AnalyseRequest) -> None:
    try:
        if not core.jobs.mark_running(job_id):
            return
        result = analyse_sync(client, req, core.settings)
    except ApiError as exc:
        core.job_failed(job_id, exc)
    except Exception:  # a job must end failed, never stay "running" forever
        core.job_failed(job_id, ApiError(status=500, error="internal_error", detail="The job failed"))
    else:
        core.jobs.finish(job_id, render(result))
    finally:
        core.slots.release()


async def run_job_async(
    core: Core, client: anthropic.AsyncAnthropic, job_id: str, req: AnalyseRequest
) -> None:
    try:
        if not core.jobs.mark_running(job_id):
            return
        result = await analyse_async(client, req, core.settings)
    except ApiError as exc:
        core.job_failed(job_id, exc)
    except Exception:
        core.job_failed(job_id, ApiError(status=500, error="internal_error", detail="The job failed"))
    else:
        core.jobs.finish(job_id, render(result))
    finally:
        core.slots.release()


def job_body(core: Core, caller: Caller, job_id: str) -> bytes:
    record = core.jobs.get(job_id, caller.owner)
    if record is None:
        raise job_not_found()
    return render(record.as_dict())


def job_created_body(job_id: str) -> bytes:
    return render({"job_id": job_id, "status": "queued"})
