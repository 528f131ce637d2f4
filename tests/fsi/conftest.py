import pytest
from fastapi.testclient import TestClient

from tests.support import fsi
from tests.support.world import seed
from yibao.app import create_app


@pytest.fixture
def world(db, keyring):
    w = seed(db, keyring)
    fsi.issue(db, keyring, w.hospital.id)
    return w


@pytest.fixture
def client(db, keyring, world):
    with TestClient(create_app(db, keyring=keyring, demo=True), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def hospital(client, world, clock):
    """The hospital's HIS, signed in (9001)."""
    h = fsi.his(client, world.hospital, clock)
    h.sign_in()
    return h
