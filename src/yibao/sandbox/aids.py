"""What the pages show only in the demo, given to them by the composition root (`app.state.demo_aids`):
the demo people to log in as, and the synthetic face captures a page without a camera offers.

A phone page has no liveness detection of its own (a real app uses its terminal's SDK), and the
cashier console has no camera: the demo offers the sandbox's synthetic captures instead, each with the
liveness result a terminal would report. They match only the demo's enrolments (each demo face is
drawn from its person's name), so the pages offer them in demo mode only.
"""

from __future__ import annotations

from typing import Any

from yibao.domain.errors import InputError
from yibao.domain.identity import make_id_number
from yibao.sandbox import face_samples
from yibao.sandbox.demo import PEOPLE

LIVE_SCORE, PHOTO_SCORE = 0.97, 0.30  # real-name log-in: a live face today, or a photo of it (fails liveness)

# The cashier's capture samples: which face is drawn (the payer's or another person's), which day, and what
# the terminal's liveness check reports. Day 0 is the enrolment image itself: a photo held up to the camera.
LIVE = {"method": "structured_light", "score": 0.98}
SAMPLES = {"same": (True, 2, LIVE), "other": (False, 1, LIVE), "spoof": (True, 0, {"method": "structured_light", "score": 0.12})}


class DemoAids:
    """The demo's aids for the pages (see yibao.web.DemoAids for the shape the pages rely on)."""

    samples = tuple(SAMPLES)

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
        # Another day's capture of the enrolled face (the demo enrolled day 0 and checked day 1).
        return face_samples.capture(person.name, day=5), {"method": "structured_light", "score": LIVE_SCORE if kind == "live" else PHOTO_SCORE}

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
