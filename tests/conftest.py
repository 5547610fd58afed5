import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Generated data (shapes) is cached in a folder of the test session, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SIAMBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.delenv("SIAMBENCH_DATA", raising=False)
    yield
    mp.undo()
