"""The Responses API to a provider that takes it natively (`responses = true`
on an `openai` provider; OpenAI's own API is one by default): the client's
body passes through with only the model renamed, the answer and its events
are relayed as sent, usage read on the side for billing. What has no
canonical form (built-in tools, `previous_response_id`) is served there,
and refused elsewhere."""

from __future__ import annotations

import json
import time

import openai
import pytest
import requests

import transcripts


@pytest.fixture(scope="module")
def native_gateway(tmp_path_factory, replay_upstream, master_key):
    """A gateway whose `oai` provider takes `/responses` natively and whose
    `anthropic` provider does not; both played by the replay upstream."""
    import servers

    url, _ = replay_upstream
    env = {"OAI_KEY": "sk-provider-oai", "ANTHROPIC_API_KEY": "sk-provider-anthropic", "ANTHROPIC_BASE_URL": url}
    config = f'[providers.oai]\nkind = "openai"\nbase_url = "{url}/v1"\napi_key_env = "OAI_KEY"\nresponses = true\n'
    with servers.gateway(tmp_path_factory.mktemp("native"), env, config, master_key) as base:
        yield base


@pytest.fixture()
def client(native_gateway, replay_control, master_key):
    return openai.OpenAI(base_url=native_gateway + "/v1", api_key=master_key, max_retries=0, timeout=30)


def upstream_log(replay_control) -> list[dict]:
    url, control = replay_control
    return control.get(url + "/_replay/requests").json()


def recorded(name: str) -> tuple[dict, dict]:
    t = transcripts.load(f"openai_responses/{name}.json")
    body = dict(t["request"]["body"])
    body["model"] = "oai/" + body["model"]
    return body, t["response"]


def test_whole_answer_is_relayed(client, replay_control):
    body, rec = recorded("responses_nonstream_instructions")
    out = client.responses.create(**body)
    assert out.id == rec["body"]["id"], "the provider's answer, as sent"
    assert out.output_text == rec["body"]["output"][0]["content"][0]["text"]
    assert out.usage.total_tokens == rec["body"]["usage"]["total_tokens"]
    sent = upstream_log(replay_control)[0]
    assert sent["path"] == "/v1/responses"
    assert sent["headers"]["authorization"] == "Bearer sk-provider-oai"
    assert sent["body"]["model"] == "gpt-4o"
    assert sent["body"]["instructions"] == body["instructions"]


def test_what_only_openai_serves_passes_through(client, replay_control):
    for name in ("responses_web_search_nonstream", "responses_previous_response_id_followup"):
        body, rec = recorded(name)
        out = client.responses.create(**body)
        assert out.id == rec["body"]["id"], name
    log = upstream_log(replay_control)
    assert log[0]["body"]["tools"] == [{"search_context_size": "medium", "type": "web_search"}]
    assert log[1]["body"]["previous_response_id"].startswith("resp_")


def test_stream_is_relayed_and_billed(client, replay_control, native_gateway, master_key):
    body, rec = recorded("responses_stream_text")
    body.pop("stream")
    want = [json.loads(d) for d in transcripts.sse_data(rec["sse"])]
    with client.responses.stream(**body) as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert [e.type for e in events] == [w["type"] for w in want]
    assert final.output_text == "".join(w["delta"] for w in want if w["type"] == "response.output_text.delta")
    usage = want[-1]["response"]["usage"]
    # Billed from the relayed `response.completed`: its generation shows it.
    deadline = time.monotonic() + 5
    while True:
        r = requests.get(native_gateway + "/api/v1/generation", params={"id": final.id}, headers={"Authorization": f"Bearer {master_key}"}, timeout=10)
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text
    gen = r.json()["data"]
    assert (gen["tokens_prompt"], gen["tokens_completion"]) == (usage["input_tokens"], usage["output_tokens"])


def test_untranslatable_falls_back_to_a_native_candidate(client, replay_control):
    body, rec = recorded("responses_web_search_nonstream")
    served = body.pop("model")
    out = client.responses.create(model="anthropic/claude-sonnet-4-5", **body, extra_body={"models": [served]})
    assert out.id == rec["body"]["id"]
    log = upstream_log(replay_control)
    assert [r["path"] for r in log] == ["/v1/responses"], "Anthropic was never asked"
    assert "models" not in log[0]["body"] and log[0]["body"]["model"] == "gpt-5"


def test_untranslatable_without_a_native_candidate_is_a_400(client, replay_control):
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model="anthropic/claude-sonnet-4-5", input="news?", tools=[{"type": "web_search"}])
    assert "web_search" in err.value.body["message"]
    assert upstream_log(replay_control) == []


def test_the_provider_proxy_bills_a_responses_answer(native_gateway, replay_control, master_key):
    """`/{provider}/v1/responses`, the raw pass-through, reads the Responses
    API's usage (`input_tokens`/`output_tokens`) to bill the call."""
    body, rec = recorded("responses_nonstream_instructions")
    body["model"] = body["model"].removeprefix("oai/")
    r = requests.post(native_gateway + "/oai/v1/responses", headers={"Authorization": f"Bearer {master_key}"}, json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == rec["body"]["id"]
    usage = rec["body"]["usage"]
    deadline = time.monotonic() + 5
    while True:
        g = requests.get(native_gateway + "/api/v1/generation", params={"id": rec["body"]["id"]}, headers={"Authorization": f"Bearer {master_key}"}, timeout=10)
        if g.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert g.status_code == 200, g.text
    gen = g.json()["data"]
    assert (gen["tokens_prompt"], gen["tokens_completion"]) == (usage["input_tokens"], usage["output_tokens"])
