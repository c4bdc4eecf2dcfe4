"""The Rasa HTTP backend against a loopback fake Rasa server."""

from __future__ import annotations

import socket
import time

import pytest

from nlu import NLUUnavailableError, ParseResult, RasaHTTPInterpreter
from tests.nlu.fake_rasa import MODEL_ID, FakeRasaServer


@pytest.fixture
def rasa():
    server = FakeRasaServer().start()
    yield server
    server.stop()


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_parse_maps_rasa_json_to_a_parse_result(rasa):
    with RasaHTTPInterpreter(rasa.url) as interpreter:
        result = interpreter.parse("đơn DH123456 đâu")
    assert isinstance(result, ParseResult)
    assert (result.intent.name, result.intent.confidence) == ("order_status", 0.93)
    assert [p.name for p in result.intent_ranking] == ["order_status", "greet"]
    assert [(e.entity, e.value, e.start, e.end, e.confidence) for e in result.entities] == [
        ("order_id", "DH123456", 4, 12, 0.99)
    ]
    assert rasa.requests == [{"text": "đơn DH123456 đâu"}]


def test_to_rasa_of_a_remote_result_keeps_rasa_shape(rasa):
    payload = RasaHTTPInterpreter(rasa.url).parse("hello").to_rasa()
    assert set(payload) == {"text", "intent", "entities", "intent_ranking", "model_version"}


def test_version_is_learned_from_the_status_endpoint_after_a_parse(rasa):
    interpreter = RasaHTTPInterpreter(rasa.url)
    assert interpreter.version == ""
    assert interpreter.parse("hello").model_version == MODEL_ID
    assert interpreter.version == MODEL_ID


def test_version_property_does_not_call_a_down_server():
    interpreter = RasaHTTPInterpreter(f"http://127.0.0.1:{unused_port()}", timeout=5.0)
    started = time.perf_counter()
    assert interpreter.version == "" and interpreter.fetch_version() == ""
    assert time.perf_counter() - started < 2


async def test_aparse_uses_one_pooled_async_client(rasa):
    async with RasaHTTPInterpreter(rasa.url) as interpreter:
        first = await interpreter.aparse("hello")
        client = interpreter._async_client
        second = await interpreter.aparse("đơn hàng")
        assert interpreter._async_client is client
    assert (first.intent.name, second.intent.name, first.model_version) == ("greet", "order_status", MODEL_ID)


async def test_aparse_batch_keeps_input_order(rasa):
    results = await RasaHTTPInterpreter(rasa.url).aparse_batch(["hello", "đơn hàng", "hi"])
    assert [r.intent.name for r in results] == ["greet", "order_status", "greet"]


def test_parse_batch_returns_one_result_per_text(rasa):
    results = RasaHTTPInterpreter(rasa.url).parse_batch(["hello", "order please"])
    assert [r.text for r in results] == ["hello", "order please"]


def test_server_error_raises_nlu_unavailable(rasa):
    rasa.mode = "error"
    with pytest.raises(NLUUnavailableError, match="answered HTTP 500"):
        RasaHTTPInterpreter(rasa.url).parse("hello")


async def test_server_error_raises_nlu_unavailable_in_async_parse(rasa):
    rasa.mode = "error"
    with pytest.raises(NLUUnavailableError, match="HTTP 500"):
        await RasaHTTPInterpreter(rasa.url).aparse("hello")


def test_hanging_server_times_out_with_a_clear_message(rasa):
    rasa.mode = "hang"
    started = time.perf_counter()
    with pytest.raises(NLUUnavailableError, match=r"did not answer within 0.3 s"):
        RasaHTTPInterpreter(rasa.url, timeout=0.3).parse("hello")
    assert time.perf_counter() - started < 3


def test_server_down_raises_nlu_unavailable():
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(NLUUnavailableError, match="not reachable"):
        RasaHTTPInterpreter(url, timeout=1.0).parse("hello")
