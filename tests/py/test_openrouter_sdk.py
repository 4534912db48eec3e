"""OpenRouter's official Python SDK (`openrouter`) against the gateway's keys
API, with only `server_url` changed: every call below is the SDK's own, and
its pydantic models validate every response."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from openrouter import OpenRouter, errors


@pytest.fixture()
def master(gateway, master_key):
    return OpenRouter(api_key=master_key, server_url=gateway + "/api/v1")


def test_create_get_update_list_delete(master, gateway):
    expires = dt.datetime(2031, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    created = master.api_keys.create(
        name="sdk key", limit=12.5, limit_reset="monthly", include_byok_in_limit=True, expires_at=expires
    )
    secret, data = created.key, created.data
    assert secret.startswith("sk-ar-v1-")
    assert data.name == "sdk key"
    assert data.limit == 12.5 and data.limit_remaining == 12.5
    assert data.limit_reset == "monthly"
    assert data.include_byok_in_limit is True
    assert data.expires_at == expires
    assert data.usage == 0 and data.usage_daily == 0 and data.usage_weekly == 0 and data.usage_monthly == 0
    assert data.disabled is False
    assert data.last_used_at is None
    assert "..." in data.label and secret not in data.label
    dt.datetime.fromisoformat(data.created_at)

    got = master.api_keys.get(hash=data.hash).data
    assert (got.hash, got.name, got.limit) == (data.hash, "sdk key", 12.5)

    updated = master.api_keys.update(hash=data.hash, name="renamed", limit=None, disabled=True).data
    assert updated.name == "renamed" and updated.limit is None and updated.limit_remaining is None
    assert updated.disabled is True
    assert updated.updated_at is not None

    listed = master.api_keys.list().data
    assert data.hash not in [k.hash for k in listed], "disabled keys are listed only when asked for"
    listed = master.api_keys.list(include_disabled=True).data
    assert data.hash in [k.hash for k in listed]
    for k in listed:
        assert secret not in k.label

    assert master.api_keys.delete(hash=data.hash).DELETED is True
    with pytest.raises(errors.OpenRouterError) as gone:
        master.api_keys.get(hash=data.hash)
    assert gone.value.status_code == 404


def test_current_key_metadata_for_a_key_and_the_master(master, gateway):
    created = master.api_keys.create(name="me", limit=3.0, limit_reset="daily")
    own = OpenRouter(api_key=created.key, server_url=gateway + "/api/v1")
    me = own.api_keys.get_current_key_metadata().data
    assert me.label == created.data.label
    assert me.limit == 3.0 and me.limit_remaining == 3.0 and me.limit_reset == "daily"
    assert me.usage == 0
    assert me.is_management_key is False
    assert me.rate_limit.requests == -1 and me.rate_limit.note
    assert [b.scope for b in me.budgets] == ["key_limit"]

    boss = master.api_keys.get_current_key_metadata().data
    assert boss.is_management_key is True
    assert boss.limit is None


def test_arouter_fields_round_trip(master, gateway, master_key):
    """ARouter's additions (rate_limit, management, allowed_models) are not in
    the SDK's parameters: set them with plain HTTP, read them back through the SDK."""
    r = requests.post(
        gateway + "/api/v1/keys",
        headers={"Authorization": f"Bearer {master_key}"},
        json={"name": "extras", "rate_limit": {"requests": 30, "interval": "1m"}, "allowed_models": ["openai/*"]},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    hash_ = r.json()["data"]["hash"]
    raw = requests.get(
        gateway + f"/api/v1/keys/{hash_}", headers={"Authorization": f"Bearer {master_key}"}, timeout=10
    ).json()["data"]
    assert raw["rate_limit"] == {"requests": 30, "interval": "60s"}
    assert raw["allowed_models"] == ["openai/*"]
    assert raw["management"] is False
    # The SDK still validates the record with the extra fields in it.
    assert master.api_keys.get(hash=hash_).data.name == "extras"
    master.api_keys.delete(hash=hash_)


def test_who_may_manage(master, gateway):
    user = master.api_keys.create(name="inference only")
    as_user = OpenRouter(api_key=user.key, server_url=gateway + "/api/v1")
    with pytest.raises(errors.OpenRouterError) as refused:
        as_user.api_keys.list()
    assert refused.value.status_code == 403
    with pytest.raises(errors.OpenRouterError) as refused:
        as_user.api_keys.create(name="nope")
    assert refused.value.status_code == 403
    # Any key may read its own record.
    assert as_user.api_keys.get_current_key_metadata().data.is_management_key is False
    bad = OpenRouter(api_key="sk-ar-v1-not-a-key", server_url=gateway + "/api/v1")
    with pytest.raises(errors.OpenRouterError) as unknown:
        bad.api_keys.get_current_key_metadata()
    assert unknown.value.status_code == 401
    master.api_keys.delete(hash=user.data.hash)
