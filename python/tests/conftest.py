import pytest

import qmec


@pytest.fixture
def small():
    return qmec.Scenario("paper-small")
