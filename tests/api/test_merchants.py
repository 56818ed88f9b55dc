from __future__ import annotations

from tests.helpers import gql, make_merchant, top_code


async def test_merchant_onboarding_and_viewer(client):
    m = await make_merchant(client)
    body = await gql(
        client,
        "{ viewer { id role merchantId storeIds merchant { id stores { id } } } }",
        token=m.staff,
    )
    viewer = body["data"]["viewer"]
    assert viewer["role"] == "MERCHANT_STAFF"
    assert viewer["merchantId"] == m.merchant_id
    assert viewer["storeIds"] == [m.store_id]
    assert {s["id"] for s in viewer["merchant"]["stores"]} == {m.store_id, m.other_store_id}

    body = await gql(
        client, "{ viewer { role terminal { id storeId } } }", terminal_key=m.terminal_key
    )
    assert body["data"]["viewer"]["role"] == "TERMINAL"
    assert body["data"]["viewer"]["terminal"]["storeId"] == m.store_id


async def test_admin_cannot_touch_another_merchant(client):
    a = await make_merchant(client)
    b = await make_merchant(client, a.operator)
    body = await gql(
        client,
        "mutation($i: StoreCreateInput!) { storeCreate(input: $i) { store { id } errors { code } } }",
        {"i": {"merchantId": b.merchant_id, "name": "intruder"}},
        token=a.admin,
    )
    assert top_code(body) == "FORBIDDEN"
    body = await gql(
        client, "query($id: ID!) { merchant(id: $id) { id } }", {"id": b.merchant_id}, token=a.admin
    )
    assert top_code(body) == "FORBIDDEN"
