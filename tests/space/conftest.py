"""One app on tiny checkpoints for every test of the Space that calls it over gradio_client."""
import pytest

from .helpers import start_app


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """(url, folder) of the app launched on 127.0.0.1; closed when the session ends."""
    root = tmp_path_factory.mktemp("app")
    url, demo = start_app(root)
    yield url, root
    demo.close()


@pytest.fixture(scope="session")
def client(server):
    from gradio_client import Client

    return Client(server[0], verbose=False, download_files=str(server[1] / "downloads"))
