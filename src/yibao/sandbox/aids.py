"""What the pages show only in the demo, given to them by the composition root (`app.state.demo_aids`):
the demo people to log in as, the synthetic face captures a page without a camera offers, and where the
SANDBOX SMS gateway shows what it "sent" (the platform keeps no text: the log-in page links there).

A phone page has no camera of its own here, and the cashier console has none at all: the demo offers the
sandbox's synthetic captures instead — a live face (another day's capture: other light, a small shift,
sensor noise) or a photo (the enrolment image itself, day 0, held up to the camera). Whether a capture is
live is the sandbox verifier's decision from the capture (yibao.sandbox.face), never what the page says;
the liveness claim sent with it only names the terminal's sensor. They match only the demo's enrolments
(each demo face is drawn from its person's name), so the pages offer them in demo mode only.
"""

from __future__ import annotations

from typing import Any

from yibao.domain.errors import InputError
from yibao.domain.identity import make_id_number
from yibao.sandbox import face_samples
from yibao.sandbox.demo import PEOPLE

LIVE_DAY, PHOTO_DAY = 5, 0  # real-name log-in: a live face today, or the enrolment photo held up (fails liveness)

# The cashier's capture samples: which face is drawn (the payer's or another person's), which day, and what the
# terminal says about its sensor. Day 0 is the enrolment image itself: a photo held up to the camera, which the
# verifier finds not live whatever the terminal claims (the "spoof" sample claims a high score on purpose).
LIVE = {"method": "structured_light", "score": 0.98}
SAMPLES = {"same": (True, 2, LIVE), "other": (False, 1, LIVE), "spoof": (True, 0, LIVE)}


class DemoAids:
    """The demo's aids for the pages (see yibao.web.DemoAids for the shape the pages rely on)."""

    samples = tuple(SAMPLES)

    def __init__(self, sms_outbox_url: str = "/sandbox/sms/outbox") -> None:
        self.sms_outbox_url = sms_outbox_url  # the SANDBOX SMS gateway's own page of what it "sent"

    def login_people(self) -> list[dict[str, str]]:
        return [{"name": p.name, "phone": p.phone or "", "id_number": make_id_number(p.area, p.born, p.serial),
                 "role_zh": p.role_zh, "role_en": p.role_en} for p in PEOPLE if p.phone]

    def login_faces(self) -> list[dict[str, str]]:
        adults = [p for p in PEOPLE if p.phone]
        return [{"value": f"live:{p.key}", "name": p.name, "kind": "live"} for p in adults] + \
               [{"value": f"photo:{adults[0].key}", "name": adults[0].name, "kind": "photo"}]

    def login_capture(self, choice: str | None) -> tuple[str, dict[str, Any]]:
        kind, _, key = (choice or "").partition(":")
        person = next((p for p in PEOPLE if p.key == key and p.phone), None)
        if person is None or kind not in ("live", "photo"):
            raise InputError("sample", "invalid_choice", "请选择人脸采集样本", "choose a face capture")
        # Live: another day's capture of the enrolled face (the demo enrolled day 0 and checked day 1). Photo: day 0.
        return face_samples.capture(person.name, day=LIVE_DAY if kind == "live" else PHOTO_DAY), dict(LIVE)

    def sample_face(self, holder_name: str, sample: str) -> tuple[str, int, dict[str, Any]]:
        """A cashier sample's (face key, day, liveness) for the holder whose full name is given."""
        if sample not in SAMPLES:
            raise InputError("sample", "invalid_sample", "请选择人脸采集样本", "choose a face-capture sample")
        own, day, liveness = SAMPLES[sample]
        name = holder_name if own else next(p.name for p in PEOPLE if p.name != holder_name)
        return name, day, liveness

    def face_png(self, name: str, day: int) -> bytes:
        return face_samples.face_png(name, day=day)

    def capture(self, name: str, day: int) -> str:
        return face_samples.capture(name, day)
