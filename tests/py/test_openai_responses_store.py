"""Stored responses (`store`, on by default): the `openai` SDK's
`previous_response_id`, `responses.retrieve`, `responses.delete` and
`responses.input_items.list` through the gateway, with translated providers
(Anthropic, Gemini) and one that takes the Responses API natively, all
played by the replay upstream. A stored response belongs to the key that
made it."""

from __future__ import annotations

import json

import openai
import pytest
import requests

import transcripts

TOOLS = [
    {"type": "function", "name": "get_user_country", "description": "", "parameters": {"additionalProperties": False, "properties": {}, "type": "object"}},
    {"type": "function", "name": "final_result", "description": "The final response which ends this conversation", "parameters": {"properties": {"city": {"type": "string"}, "country": {"type": "string"}}, "required": ["city", "country"], "type": "object"}},
]
QUESTION = "What is the largest city in the user country?"


def upstream_log(replay_control) -> list[dict]:
    url, control = replay_control
    return control.get(url + "/_replay/requests").json()


def new_key(base: str, master_key: str, name: str) -> str:
    r = requests.post(base + "/api/v1/keys", headers={"Authorization": f"Bearer {master_key}"}, json={"name": name}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["key"]


def sdk(base: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=30)


@pytest.fixture()
def routed_gateway(routed_store_gateway):
    """The tests on the shared gateway run on the SQLite store and on PostgreSQL."""
    return routed_store_gateway


@pytest.fixture()
def client(routed_gateway, replay_control, master_key):
    return sdk(routed_gateway, new_key(routed_gateway, master_key, "store"))


def first_turn(client):
    out = client.responses.create(model="anthropic/claude-sonnet-4-5", input=QUESTION, tools=TOOLS, tool_choice="required")
    (call,) = [i for i in out.output if i.type == "function_call"]
    return out, call


def test_previous_response_id_continues_on_anthropic(client, replay_control):
    first, call = first_turn(client)
    assert first.store is True and first.previous_response_id is None
    follow = client.responses.create(
        model="anthropic/claude-sonnet-4-5",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Mexico"}],
        tools=TOOLS,
        tool_choice="required",
        max_output_tokens=4096,
    )
    assert follow.previous_response_id == first.id and follow.store is True
    (final,) = [i for i in follow.output if i.type == "function_call"]
    assert json.loads(final.arguments) == {"city": "Mexico City", "country": "Mexico"}
    sent = upstream_log(replay_control)[1]
    assert sent["transcript"] == "anthropic/tool_use_nonstream_followup.json"
    turns = sent["body"]["messages"]
    assert [m["role"] for m in turns] == ["user", "assistant", "user"], "the earlier turns went upstream"
    assert turns[0]["content"][0]["text"] == QUESTION
    assert turns[1]["content"][0]["id"] == call.call_id
    assert turns[2]["content"][0]["tool_use_id"] == call.call_id


def test_previous_response_id_continues_on_gemini(client, replay_control):
    """The earlier turns go to Gemini as its own `contents`, the call's
    thought signature included. (No recording continues this exact
    conversation, so the replay answers the second turn with a miss: what
    is checked is what Gemini was sent.)"""
    get_capital = {"type": "function", "name": "get_capital", "description": "Get the capital of a country.", "parameters": {"additionalProperties": False, "properties": {"country": {"description": "The country name.", "type": "string"}}, "required": ["country"], "type": "object"}}
    common = {"model": "gemini/gemini-2.5-pro", "instructions": "You are a helpful chatbot.", "tools": [get_capital], "temperature": 0}
    first = client.responses.create(input="What is the capital of France?", **common)
    (call,) = [i for i in first.output if i.type == "function_call"]
    with pytest.raises(openai.NotFoundError) as miss:
        client.responses.create(previous_response_id=first.id, input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Paris"}], **common)
    assert "replay" in miss.value.message
    sent = upstream_log(replay_control)[-1]["body"]["contents"]
    recorded = transcripts.load("gemini/function_call_nonstream_call.json")["response"]["body"]["candidates"][0]["content"]["parts"][0]
    assert [c["role"] for c in sent] == ["user", "model", "user"]
    assert sent[0]["parts"] == [{"text": "What is the capital of France?"}]
    assert sent[1]["parts"][0]["functionCall"]["args"] == recorded["functionCall"]["args"]
    # The signature rides in the call id base64url-encoded, as on chat.
    assert sent[1]["parts"][0]["thoughtSignature"] == recorded["thoughtSignature"].replace("+", "-").replace("/", "_")
    assert sent[2]["parts"][0]["functionResponse"]["name"] == "get_capital"


def test_retrieve_input_items_and_delete(client, replay_control):
    first, call = first_turn(client)
    got = client.responses.retrieve(first.id)
    assert got.id == first.id and got.output[0].call_id == call.call_id and got.usage.total_tokens == first.usage.total_tokens
    items = client.responses.input_items.list(first.id)
    assert [i.type for i in items.data] == ["message"]
    assert items.data[0].content[0].text == QUESTION and items.data[0].id
    follow = client.responses.create(
        model="anthropic/claude-sonnet-4-5",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Mexico"}],
        tools=TOOLS,
        tool_choice="required",
    )
    # The whole conversation, newest first by default (OpenAI's order).
    chain = client.responses.input_items.list(follow.id)
    assert [i.type for i in chain.data] == ["function_call_output", "function_call", "message"]
    assert chain.has_more is False and chain.first_id == chain.data[0].id and chain.last_id == chain.data[-1].id
    asc = client.responses.input_items.list(follow.id, order="asc", limit=2)
    assert [i.type for i in asc.data] == ["message", "function_call"] and asc.has_more is True
    rest = client.responses.input_items.list(follow.id, order="asc", after=asc.last_id)
    assert [i.type for i in rest.data] == ["function_call_output"]
    assert client.responses.delete(first.id) is None
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="anthropic/claude-sonnet-4-5", previous_response_id=first.id, input="and then?")
    # The later response holds its own copy of the conversation.
    assert len(client.responses.input_items.list(follow.id).data) == 3


def test_another_key_gets_404(client, routed_gateway, replay_control, master_key):
    first, _ = first_turn(client)
    other = sdk(routed_gateway, new_key(routed_gateway, master_key, "other"))
    for ask in (lambda: other.responses.retrieve(first.id), lambda: other.responses.input_items.list(first.id), lambda: other.responses.delete(first.id)):
        with pytest.raises(openai.NotFoundError):
            ask()
    with pytest.raises(openai.NotFoundError) as err:
        other.responses.create(model="anthropic/claude-sonnet-4-5", previous_response_id=first.id, input="hi")
    assert first.id in err.value.body["message"]
    assert len(upstream_log(replay_control)) == 1, "only the first turn went upstream"
    assert client.responses.retrieve(first.id).id == first.id, "still there for its own key"


def test_unknown_previous_response_id_on_a_translated_provider_is_a_404(client, replay_control):
    with pytest.raises(openai.NotFoundError) as err:
        client.responses.create(model="anthropic/claude-sonnet-4-5", previous_response_id="resp_never_made", input="hi")
    assert err.value.body["message"] == "Response with id 'resp_never_made' not found."
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="anthropic/claude-sonnet-4-5", input=[{"type": "item_reference", "id": "msg_never_made"}])
    assert upstream_log(replay_control) == []


def test_store_false_is_not_kept(client, replay_control):
    out = client.responses.create(model="anthropic/claude-sonnet-4-5", input=QUESTION, tools=TOOLS, tool_choice="required", store=False)
    assert out.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(out.id)


def test_a_stream_is_kept(client, replay_control):
    with client.responses.stream(
        model="anthropic/claude-sonnet-4-5",
        max_output_tokens=32000,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "What is 1+1? Answer with just the number."}]}],
    ) as stream:
        list(stream)
        final = stream.get_final_response()
    got = client.responses.retrieve(final.id)
    assert got.output_text == final.output_text and got.status == "completed"


# --------------------------------------------------- across a restart


def test_a_stored_response_survives_a_restart(tmp_path, replay_upstream, replay_control, master_key):
    import servers

    env, config = servers_setup(replay_upstream[0])
    with servers.gateway(tmp_path, env, config, master_key) as base:
        first, call = first_turn(sdk(base, master_key))
    with servers.gateway(tmp_path, env, config, master_key) as base:
        client = sdk(base, master_key)
        assert client.responses.retrieve(first.id).output[0].call_id == call.call_id
        client.responses.create(
            model="anthropic/claude-sonnet-4-5",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Mexico"}],
            tools=TOOLS,
            tool_choice="required",
        )
    assert upstream_log(replay_control)[-1]["transcript"] == "anthropic/tool_use_nonstream_followup.json"


def servers_setup(url: str):
    from conftest import routed_setup

    return routed_setup(url)


# ------------------------------------------------------ storing disabled


def test_with_retention_zero_nothing_is_kept(tmp_path, replay_upstream, replay_control, master_key):
    import servers

    env, config = servers_setup(replay_upstream[0])
    with servers.gateway(tmp_path, env, "responses_retention_days = 0\n" + config, master_key) as base:
        client = sdk(base, master_key)
        first, _ = first_turn(client)
        assert first.store is False
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(first.id)
        with pytest.raises(openai.BadRequestError) as err:
            client.responses.create(model="anthropic/claude-sonnet-4-5", previous_response_id=first.id, input="and then?")
        assert err.value.code == "stored_responses_disabled"
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="anthropic/claude-sonnet-4-5", input=[{"type": "item_reference", "id": "fc_x"}])
    assert len(upstream_log(replay_control)) == 1


# ------------------------------------ a provider that speaks Responses


@pytest.fixture(scope="module")
def native_gateway(tmp_path_factory, replay_upstream, master_key):
    """`oai` takes `/responses` natively; `anthropic` does not."""
    import servers

    url, _ = replay_upstream
    env = {"OAI_KEY": "sk-provider-oai", "ANTHROPIC_API_KEY": "sk-provider-anthropic", "ANTHROPIC_BASE_URL": url}
    config = f'[providers.oai]\nkind = "openai"\nbase_url = "{url}/v1"\napi_key_env = "OAI_KEY"\nresponses = true\n'
    with servers.gateway(tmp_path_factory.mktemp("native-store"), env, config, master_key) as base:
        yield base


def native_recorded(name: str) -> tuple[dict, dict]:
    t = transcripts.load(f"openai_responses/{name}.json")
    body = dict(t["request"]["body"])
    body["model"] = "oai/" + body["model"]
    return body, t["response"]["body"]


def test_a_native_answer_is_kept_too(native_gateway, replay_control, master_key):
    client = sdk(native_gateway, new_key(native_gateway, master_key, "native"))
    body, rec = native_recorded("responses_nonstream_instructions")
    out = client.responses.create(**body)
    got = client.responses.retrieve(out.id)
    assert got.id == rec["id"] and got.output_text == out.output_text
    (item,) = client.responses.input_items.list(out.id).data
    assert item.role == "user" and item.id


def test_an_id_arouter_did_not_store_goes_to_the_native_provider_unchanged(native_gateway, replay_control, master_key):
    client = sdk(native_gateway, new_key(native_gateway, master_key, "native-unknown"))
    body, rec = native_recorded("responses_previous_response_id_followup")
    out = client.responses.create(**body)
    assert out.id == rec["id"]
    (sent,) = upstream_log(replay_control)
    assert sent["body"]["previous_response_id"] == body["previous_response_id"]
    assert sent["body"]["input"] == body["input"], "the client's input, as sent"


def test_a_translated_conversation_continues_natively_as_items(native_gateway, replay_control, master_key):
    """Turns the gateway made itself (here Anthropic's) go to the native
    provider as items: it has never seen their id. (No recording has this
    conversation: the replay's miss is expected; what it was sent is checked.)"""
    client = sdk(native_gateway, new_key(native_gateway, master_key, "native-cross"))
    first, call = first_turn(client)
    with pytest.raises(openai.NotFoundError):
        client.responses.create(
            model="oai/gpt-4.1",
            previous_response_id=first.id,
            input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Mexico"}],
        )
    sent = upstream_log(replay_control)[-1]
    assert sent["path"] == "/v1/responses"
    assert "previous_response_id" not in sent["body"]
    assert [i.get("type") for i in sent["body"]["input"]] == ["message", "function_call", "function_call_output"]
    assert sent["body"]["input"][1]["call_id"] == call.call_id
