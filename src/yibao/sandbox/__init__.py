"""The sandbox wing: the demo world and every sandbox, clearly named as such — SANDBOX payment
institutions and credit bank (channels/), the SANDBOX face verifier (face.py) and its synthetic sample
faces (face_samples.py), the SANDBOX SMS gateway (sms.py), the demo people, institutions and credentials
(demo.py), and what the pages show only in the demo (aids.py).

Only the composition root (yibao.app) and the CLI import this package; production code never does.
`install` mounts the sandboxes on the demo app; the platform still reaches them over HTTP at the URLs
it is configured with, exactly as it would reach real ones.
"""

from __future__ import annotations

from typing import Any


def install(app: Any, platform: Any, base_url: str, *, timeout_s: float = 5.0) -> Any:
    """Mount the sandbox face verifier, SMS gateway and payment institutions on ``app`` at ``base_url``, point
    the demo's institutions at them at start-up, and return the pages' demo aids (`aids.DemoAids`). ``timeout_s``:
    how long the platform waits for each of them (below the institutions' default hang_ms knob, 10 s, so the demo
    shows a lost answer as one; a test server waits longer, room for a loaded machine)."""
    from yibao.face import FaceVerifier
    from yibao.sandbox import demo
    from yibao.sandbox.aids import DemoAids
    from yibao.sandbox.channels import mount_all
    from yibao.sandbox.face import create_app as face_sandbox
    from yibao.sandbox.face import face_key
    from yibao.sandbox.sms import create_app as sms_sandbox
    from yibao.sandbox.sms import sms_key
    from yibao.sms import SmsGateway

    if platform.face is None:
        # The demo's checks go to the sandbox verifier mounted here, over HTTP, as they would to a real one.
        platform.face = FaceVerifier(f"{base_url}/sandbox/face", face_key(), timeout=timeout_s)
    app.mount("/sandbox/face", face_sandbox(face_key()))
    if platform.sms is None:
        # Likewise its text messages: to the sandbox gateway mounted here, which keeps them in its own memory.
        platform.sms = SmsGateway(f"{base_url}/sandbox/sms", sms_key(), timeout=timeout_s)
    app.mount("/sandbox/sms", sms_sandbox(sms_key()))
    pairs = mount_all(app, base_url=base_url)
    db, keyring = platform.db, platform.keyring
    # Their keys are made afresh in this process: point the demo's institutions (credit banks included) at them at start-up.
    app.state.on_start.append(lambda: demo.configure_sandbox_channels(db, keyring, pairs, base_url, timeout_s=timeout_s))
    app.state.on_start.append(lambda: demo.restore_sandbox_credit(db, keyring, pairs))  # the credit lines of a previous start
    return DemoAids(sms_outbox_url="/sandbox/sms/outbox")
