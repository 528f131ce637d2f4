import pytest
from fastapi.testclient import TestClient

from tests.support.world import seed
from yibao.app import create_app


@pytest.fixture
def app(db, keyring):
    return create_app(db, keyring=keyring)


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def world(db, keyring):
    return seed(db, keyring)


OPERATOR = {"Authorization": "Bearer demo-operator-token"}
