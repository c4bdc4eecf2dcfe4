"""The bot's handoff note reaches the agents: through the real app, a defect reported with a photo
escalates with a private note that names the photo, and the customer never sees it."""

from __future__ import annotations


async def test_the_handoff_note_names_the_photo_and_stays_private(client):
    headers = await client.login()
    response = await client.post("/webhooks/cli", json={
        "sender_id": "evidence", "message_id": "e1",
        "text": "nồi cơm điện đơn DH100001 bị hỏng, bấm nút không lên đèn",
        "attachments": [{"kind": "image", "name": "noi-hong.jpg", "mime_type": "image/jpeg"}]})
    assert response.status_code == 200, response.text
    await client.settle()
    conversation = (await client.get("/api/conversations", headers=headers)).json()["data"][0]
    assert (conversation["state"], conversation["priority"]) == ("waiting_for_agent", "high")
    messages = (await client.get(f"/api/conversations/{conversation['id']}", headers=headers)).json()["messages"]
    notes = [m for m in messages if m["is_private"]]
    assert len(notes) == 1 and notes[0]["author"] == "system"
    assert "DH100001" in notes[0]["text"] and "[+ 1 ảnh: noi-hong.jpg]" in notes[0]["text"]
    seen_by_customer = (await client.get("/webhooks/cli/messages", params={"sender_id": "evidence"})).json()["data"]
    assert all("[+ 1 ảnh" not in m["text"] for m in seen_by_customer)
    assert any("đã nhận được 1 ảnh" in m["text"] for m in seen_by_customer)


async def test_an_escalation_without_a_note_adds_no_message(client):
    headers = await client.login()
    await client.post("/webhooks/cli", json={"sender_id": "plain", "message_id": "p1", "text": "cho mình gặp nhân viên"})
    await client.settle()
    conversation = (await client.get("/api/conversations", headers=headers)).json()["data"][0]
    assert conversation["state"] == "waiting_for_agent"
    messages = (await client.get(f"/api/conversations/{conversation['id']}", headers=headers)).json()["messages"]
    assert not [m for m in messages if m["is_private"]]
