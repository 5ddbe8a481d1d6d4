import json

import pytest
from django.core.exceptions import ImproperlyConfigured

from llm_gateway import registry
from llm_gateway.client import build_payload
from llm_gateway.registry import Endpoint

RUN_LOCAL = ('[{"key": "local-smollm2", "name": "SmolLM2 135M (local llama.cpp)", '
             '"base_url": "http://127.0.0.1:8088/v1", "model": "smollm2-135m-instruct"}]')


def test_make_run_format_is_accepted_with_settings_timeouts(settings):
    settings.LLM_FIRST_TOKEN_TIMEOUT = 42.0
    [endpoint] = registry.parse(RUN_LOCAL)
    assert endpoint.key == "local-smollm2" and endpoint.provider == "generic"
    assert endpoint.url == "http://127.0.0.1:8088/v1/chat/completions"
    assert endpoint.first_token_timeout == 42.0 and endpoint.api_key() == ""


def test_file_registry(settings, tmp_path):
    path = tmp_path / "endpoints.json"
    path.write_text(RUN_LOCAL)
    settings.LLM_ENDPOINTS, settings.LLM_ENDPOINTS_FILE = "", str(path)
    assert [e.key for e in registry.endpoints()] == ["local-smollm2"]
    settings.LLM_ENDPOINTS = RUN_LOCAL
    with pytest.raises(ImproperlyConfigured, match="not both"):
        registry.endpoints()


BASE = {"key": "k", "name": "N", "base_url": "https://h/v1", "model": "m"}


@pytest.mark.parametrize("entry, message", [
    ({**BASE, "model": ""}, "'model' is required"),
    ({**BASE, "base_url": "ftp://h/v1"}, "must be an http"),
    ({**BASE, "base_url": "https://h/v1/chat/completions"}, "stop before /chat/completions"),
    ({**BASE, "provider": "openia"}, "provider 'openia'"),
    ({**BASE, "api_key_env": "sk-abc123"}, "NAME of an environment variable"),
    ({**BASE, "params": {"temprature": 1}}, "not supported"),
    ({**BASE, "timeouts": {"first_token": 0}}, "at least"),
    ({**BASE, "fallback": "nowhere"}, "fallback 'nowhere'"),
    ({**BASE, "api_key": "sk-live"}, "unknown field"),
    ({**BASE, "key": "Has Space"}, "lower-case"),
])
def test_bad_entries_are_refused_loudly(entry, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        registry.parse(json.dumps([entry]))


def test_duplicate_keys_and_bad_json_are_refused():
    with pytest.raises(ImproperlyConfigured, match="used twice"):
        registry.parse(json.dumps([BASE, BASE]))
    with pytest.raises(ImproperlyConfigured, match="not valid JSON"):
        registry.parse("[{")
    with pytest.raises(ImproperlyConfigured, match="JSON list"):
        registry.parse("{}")


def _endpoint(provider, **params):
    return Endpoint(key="k", name="n", base_url="https://h/v1", model="m", provider=provider, params=params)


def test_mistral_gets_only_fields_it_accepts():
    payload = build_payload(_endpoint("mistral", temperature=0.3, frequency_penalty=0.5, seed=7), [
        {"role": "user", "content": "hi", "name": "P01"}], max_tokens=100)
    assert "stream_options" not in payload and "frequency_penalty" not in payload
    assert payload["random_seed"] == 7 and payload["temperature"] == 0.3 and payload["max_tokens"] == 100
    assert payload["messages"] == [{"role": "user", "content": "hi"}]


def test_groq_gets_n_1_and_usage_request():
    payload = build_payload(_endpoint("groq", top_k=5), [{"role": "user", "content": "hi"}])
    assert payload["n"] == 1 and payload["stream_options"] == {"include_usage": True}
    assert "top_k" not in payload


def test_llamacpp_keeps_native_sampling_params():
    payload = build_payload(_endpoint("llamacpp", top_k=5, safe_prompt=True), [{"role": "user", "content": "hi"}])
    assert payload["top_k"] == 5 and "safe_prompt" not in payload


def test_api_key_is_read_from_env_and_never_in_repr(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-xyz")
    endpoint = Endpoint(key="k", name="n", base_url="https://h/v1", model="m", api_key_env="MY_KEY")
    assert endpoint.api_key() == "sk-secret-xyz"
    assert "sk-secret" not in repr(endpoint) and "sk-secret" not in str(endpoint)


def test_a_key_variable_that_is_not_set_stops_the_start(monkeypatch):
    monkeypatch.delenv("CALMA_MISSPELT_KEY", raising=False)
    with pytest.raises(ImproperlyConfigured, match="CALMA_MISSPELT_KEY, which is not set"):
        registry.parse(json.dumps([{**BASE, "api_key_env": "CALMA_MISSPELT_KEY"}]))
    monkeypatch.setenv("CALMA_MISSPELT_KEY", "")  # set, even empty (an endpoint that needs no key): accepted
    assert registry.parse(json.dumps([{**BASE, "api_key_env": "CALMA_MISSPELT_KEY"}]))[0].api_key() == ""
