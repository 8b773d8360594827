"""The SDK without a server: respx intercepts anthropic 2.x once httpx is aliased to httpx2.

anthropic 2.x sends through httpx2, which respx does not know. ``httpx2.alias_httpx()``, run in
tests/conftest.py before anything imports httpx, makes ``import httpx`` resolve to httpx2 process-wide,
so respx patches the transport the SDK really uses. Modules that import httpx afterwards get httpx2's
classes, which keep httpx's API. The mock's own wire helpers build the canned bodies, so they match the
real mock.
"""

from __future__ import annotations

import sys

import anthropic
import httpx
import pytest
import respx

from mock_llm import protocol
from mock_llm.content import complete

# tests/conftest.py aliases httpx to httpx2 before anything imports httpx; respx needs that to see the SDK.
assert sys.modules["httpx"] is sys.modules["httpx2"], "httpx was imported before httpx2.alias_httpx()"

BASE = "http://mock.invalid"
USER = [{"role": "user", "content": "hi"}]


def _message_json(text_seed: int = 0) -> bytes:
    completion = complete(seed=text_seed, model="m", system=None, messages=USER, max_tokens=1024)
    return protocol.build_answer(model="m", streams=False, completion=completion).message_body("msg_respx")


def test_alias_makes_httpx_the_sdk_transport() -> None:
    import httpx2

    assert httpx is httpx2


def test_sdk_call_is_served_by_respx() -> None:
    with respx.mock(base_url=BASE, assert_all_called=True) as router:
        route = router.post("/v1/messages").mock(
            return_value=httpx.Response(200, content=_message_json(), headers={"request-id": "req_respx"})
        )
        with anthropic.Anthropic(base_url=BASE, api_key="k", max_retries=0) as sdk:
            message = sdk.messages.create(model="m", max_tokens=1024, messages=USER)
    assert message.id == "msg_respx" and message.content[0].text.startswith("## ")
    sent = route.calls.last.request
    assert sent.headers["anthropic-version"] and sent.headers["authorization"] == "Bearer k"


def test_respx_error_maps_to_the_sdk_exception() -> None:
    body = protocol.error_body("overloaded_error", "Overloaded", "req_x")
    with respx.mock(base_url=BASE) as router:
        router.post("/v1/messages").mock(return_value=httpx.Response(529, content=body))
        with (
            anthropic.Anthropic(base_url=BASE, api_key="k", max_retries=0) as sdk,
            pytest.raises(anthropic.OverloadedError),
        ):
            sdk.messages.create(model="m", max_tokens=10, messages=USER)
