"""SMS log-in codes cannot be guessed without limit: wrong tries are counted (committed before the
refusal), and then even the right code is refused (SQLite and PostgreSQL). A finding of the platform-core review."""

from __future__ import annotations

from tests.support.sms import gateway_url, texts_to


def test_sms_codes_cannot_be_guessed_without_limit(client, world):
    phone = world.phones["employee"]
    client.post("/api/v1/patient/sms-codes", json={"phone": phone})
    code = texts_to(gateway_url(client.app), phone)[0].split("验证码为 ")[1][:6]  # read where the (sandbox) gateway keeps it
    wrong = "000000" if code != "000000" else "111111"
    answers = [client.post("/api/v1/patient/sessions", json={"phone": phone, "code": wrong}).json()["error"]["code"] for _ in range(5)]
    assert answers == ["code_wrong"] * 5
    # the attempts were counted (committed before the refusal), so even the right code is now refused
    r = client.post("/api/v1/patient/sessions", json={"phone": phone, "code": code})
    assert r.status_code == 401 and r.json()["error"]["code"] == "code_invalid"
