import pytest
from fastapi.testclient import TestClient

from tests.support.api import Api
from tests.support.world import seed
from yibao.app import create_app


@pytest.fixture
def app(db, keyring, sms_gateway):
    return create_app(db, keyring=keyring, demo=True, sms_gateway=sms_gateway)


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def world(db, keyring):
    return seed(db, keyring)


@pytest.fixture
def api(db, keyring, face_verifier, sms_gateway):
    """The app with the sandbox face verifier and SMS gateway on loopback, behind the `Api` wrapper."""
    app = create_app(db, keyring=keyring, demo=True, face_verifier=face_verifier, sms_gateway=sms_gateway)
    with TestClient(app) as client:
        yield Api(client)
