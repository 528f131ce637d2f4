"""The platform's face verifier client on its own (no verifier behind it): a signed answer must be
to this request and this template, and an address nobody answers is an outage."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from yibao.face import FaceUnavailable, FaceVerifier, signing
from yibao.sandbox.face_samples import capture

ANY = capture("任何人")
LIVE = {"method": "structured_light", "score": 0.98}


def run(coro):
    return asyncio.run(coro)


def _fake(key: bytes, answer) -> httpx.MockTransport:  # noqa: ANN001
    def handler(request: httpx.Request) -> httpx.Response:
        sent = json.loads(request.content)
        payload = answer(sent)
        body = json.dumps(payload).encode()
        return httpx.Response(200, content=body, headers={signing.HEADER: signing.sign(key, body)})
    return httpx.MockTransport(handler)


def test_the_client_rejects_a_replayed_or_tampered_answer():
    key = b"sekrit-shared-key"
    ok = {"match": True, "similarity": 0.99, "threshold": 0.8, "liveness": "pass", "liveness_method": "tof", "template_id": "tpl_1"}
    replay = FaceVerifier("http://verifier.test", key, transport=_fake(key, lambda sent: {**ok, "request_id": "an-old-request"}))
    with pytest.raises(FaceUnavailable, match="another request"):
        run(replay.verify("tpl_1", ANY, LIVE))
    other_template = FaceVerifier("http://verifier.test", key,
                                  transport=_fake(key, lambda sent: {**ok, "request_id": sent["request_id"], "template_id": "tpl_2"}))
    with pytest.raises(FaceUnavailable, match="another template"):
        run(other_template.verify("tpl_1", ANY, LIVE))

    def tampered(request: httpx.Request) -> httpx.Response:
        body = json.dumps({**ok, "request_id": json.loads(request.content)["request_id"]}).encode()
        return httpx.Response(200, content=body, headers={signing.HEADER: signing.sign(key, body.replace(b"true", b"false"))})
    forged = FaceVerifier("http://verifier.test", key, transport=httpx.MockTransport(tampered))
    with pytest.raises(FaceUnavailable, match="not signed"):
        run(forged.verify("tpl_1", ANY, LIVE))
    good = FaceVerifier("http://verifier.test", key, transport=_fake(key, lambda sent: {**ok, "request_id": sent["request_id"]}))
    assert run(good.verify("tpl_1", ANY, LIVE)).verified
    assert "sekrit" not in repr(good)


def test_an_unreachable_verifier_is_unavailable():
    dead = FaceVerifier("http://127.0.0.1:9", "k", timeout=1.0)
    with pytest.raises(FaceUnavailable) as exc:
        run(dead.enrol(capture("吴军")))
    assert exc.value.code == "face_verifier_unreachable"


def test_the_terminals_liveness_score_is_never_sent_on():
    """Liveness is the verifier's finding from the capture: the client passes on the sensor's name, never a score."""
    key = b"sekrit-shared-key"
    seen = []

    def answer(sent: dict) -> dict:
        seen.append(sent)
        return {"match": True, "similarity": 0.99, "threshold": 0.8, "liveness": "fail", "liveness_method": "tof",
                "template_id": "tpl_1", "request_id": sent["request_id"]}
    client = FaceVerifier("http://verifier.test", key, transport=_fake(key, answer))
    v = run(client.verify("tpl_1", ANY, {"method": "tof", "score": 0.99}))
    assert not v.verified  # the verifier said "fail": a 0.99 from the terminal changes nothing
    assert seen[0]["liveness"] == {"method": "tof"} and "score" not in json.dumps(seen[0])
    run(client.verify("tpl_1", ANY))
    assert "liveness" not in seen[1]
