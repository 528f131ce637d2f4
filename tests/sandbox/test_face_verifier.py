"""The sandbox face verifier over real HTTP on 127.0.0.1, through the platform's async client; its sealed templates."""

from __future__ import annotations

import asyncio
import base64
import json

import httpx
import pytest

from yibao.domain.errors import Conflict, InputError
from yibao.face import FaceUnavailable, FaceVerifier, signing
from yibao.face.image import encode_grey
from yibao.sandbox.face_samples import capture, reshot

BLANK = base64.b64encode(encode_grey([[90] * 32] * 32)).decode()

LIVE = {"method": "structured_light", "score": 0.98}


def run(coro):
    return asyncio.run(coro)


def test_enrol_then_verify_the_same_person_on_another_day(face_verifier):
    template = run(face_verifier.enrol(capture("王芳")))
    assert template.startswith("tpl_")
    v = run(face_verifier.verify(template, capture("王芳", day=2), LIVE))
    assert v.match and v.liveness == "pass" and v.verified
    assert 0.90 <= v.similarity <= 1.0 and v.threshold == 0.80 and v.liveness_method == "structured_light"


def test_another_persons_face_does_not_match(face_verifier):
    template = run(face_verifier.enrol(capture("王芳")))
    v = run(face_verifier.verify(template, capture("刘洋", day=1), LIVE))
    assert not v.match and not v.verified and v.similarity < 0.80


def test_a_failed_liveness_check_is_not_verified_even_when_the_face_matches(face_verifier):
    template = run(face_verifier.enrol(capture("陈静")))
    # Set-up changed with issue 11 (point 5): liveness is no longer the caller's score but the verifier's finding from
    # the capture, so the capture that fails it is the enrolment photo itself (day 0), not a low score on a live one.
    v = run(face_verifier.verify(template, capture("陈静", day=0), {"method": "action", "score": 0.42}))
    assert v.match and v.liveness == "fail" and not v.verified


def test_liveness_is_decided_from_the_capture_never_from_the_claim(face_verifier):
    template = run(face_verifier.enrol(capture("陈静")))
    for photo in (capture("陈静"), reshot("陈静"), reshot("陈静", gain=0.8, offset=30)):  # the enrolment photo, as is or re-shot
        v = run(face_verifier.verify(template, photo, {"method": "structured_light", "score": 1.0}))
        assert v.match and v.liveness == "fail" and not v.verified
    for claim in ({"method": "tof", "score": 0.0}, None):  # a live capture: whatever the terminal says, or nothing
        v = run(face_verifier.verify(template, capture("陈静", day=4), claim))
        assert v.match and v.liveness == "pass" and v.verified
    assert v.liveness_method == "capture_analysis"  # no sensor named: the verifier says what it went by


def test_the_verifier_answers_a_direct_call_with_a_score_and_ignores_the_score(face_sandbox):
    """Older clients send the score: the sandbox still accepts it, and it still decides nothing."""
    key = face_sandbox.key.encode()
    template = run(FaceVerifier(face_sandbox.url, face_sandbox.key).enrol(capture("韩梅")))
    body = json.dumps({"request_id": "r-1", "template_id": template, "capture": capture("韩梅"),
                       "liveness": {"method": "tof", "score": 0.99}}).encode()
    r = httpx.post(f"{face_sandbox.url}/verify", content=body, headers={signing.HEADER: signing.sign(key, body)})
    assert r.status_code == 200 and (r.json()["match"], r.json()["liveness"]) == (True, "fail")


def test_knobs_force_a_mismatch_and_move_the_threshold(face_sandbox, face_verifier):
    template = run(face_verifier.enrol(capture("杨磊")))
    knobs = httpx.put(f"{face_sandbox.url}/knobs", json={"force_mismatch": True}).json()
    assert knobs["force_mismatch"] is True and knobs["threshold"] == 0.80
    assert not run(face_verifier.verify(template, capture("杨磊", day=1), LIVE)).match
    httpx.put(f"{face_sandbox.url}/knobs", json={"force_mismatch": False, "threshold": 0.999})
    v = run(face_verifier.verify(template, capture("杨磊", day=1), LIVE))
    assert not v.match and v.threshold == 0.999
    assert httpx.put(f"{face_sandbox.url}/knobs", json={"error_rate": 2}).status_code == 422


def test_injected_errors_and_latency_become_unavailable(face_sandbox, face_verifier):
    face_sandbox.state.knobs = face_sandbox.state.knobs.model_copy(update={"error_rate": 1.0})
    with pytest.raises(FaceUnavailable) as exc:
        run(face_verifier.enrol(capture("赵敏")))
    assert exc.value.code == "face_verifier_sandbox_injected_error"
    face_sandbox.reset()
    face_sandbox.state.knobs = face_sandbox.state.knobs.model_copy(update={"latency_ms": 600})
    slow = FaceVerifier(face_sandbox.url, face_sandbox.key, timeout=0.2)
    with pytest.raises(FaceUnavailable) as exc:
        run(slow.enrol(capture("赵敏")))
    assert exc.value.code == "face_verifier_timeout"


def test_unknown_template_and_bad_capture(face_sandbox, face_verifier):
    with pytest.raises(Conflict) as exc:
        run(face_verifier.verify("tpl_nope", capture("黄强"), LIVE))
    assert exc.value.field == "face_template"
    with pytest.raises(InputError) as exc:
        run(face_verifier.enrol(BLANK))  # a PNG, but nothing to recognise: the verifier says so
    assert exc.value.field == "capture" and exc.value.code == "bad_capture" and "blank" in exc.value.message_en
    for bad, code in [("aGVsbG8=", "capture_type"), ("***", "bad_capture")]:  # refused before any call
        calls = face_sandbox.state.calls
        with pytest.raises(InputError) as exc:
            run(face_verifier.verify("tpl_x", bad, LIVE))
        assert exc.value.code == code and face_sandbox.state.calls == calls


def test_a_client_with_the_wrong_key_is_refused_and_distrusts_the_answer(face_sandbox):
    wrong = FaceVerifier(face_sandbox.url, "another-key")
    with pytest.raises(FaceUnavailable) as exc:
        run(wrong.enrol(capture("周婷")))
    assert exc.value.code == "face_verifier_bad_signature"
    body = json.dumps({"request_id": "r1", "capture": capture("周婷")}).encode()
    unsigned = httpx.post(f"{face_sandbox.url}/templates", content=body)
    assert unsigned.status_code == 401 and unsigned.json()["error"]["code"] == "bad_signature"
    assert signing.valid(face_sandbox.key.encode(), unsigned.content, unsigned.headers[signing.HEADER])
    signed = httpx.post(f"{face_sandbox.url}/templates", content=body, headers={signing.HEADER: signing.sign(face_sandbox.key.encode(), body)})
    assert signed.status_code == 201 and signed.json()["request_id"] == "r1"


def test_a_sealed_template_survives_a_restart_and_cannot_be_forged():
    """Templates are sealed tokens: a fresh sandbox with the same key opens them; another key, or an edit, does not."""
    from yibao.face.features import decode_capture, feature_vector
    from yibao.sandbox.face import open_template, seal_template
    from yibao.sandbox.face_samples import capture

    vector = feature_vector(decode_capture(capture("王芳")))
    sealed = seal_template(b"k1", vector)
    opened = open_template(b"k1", sealed)
    assert opened is not None and max(abs(a - b) for a, b in zip(opened, vector)) < 1e-4
    assert open_template(b"k2", sealed) is None
    body, _, tag = sealed.partition(".")
    tampered = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + tag
    assert open_template(b"k1", tampered) is None
    assert open_template(b"k1", "tpl_nonsense") is None
