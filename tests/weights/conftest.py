"""The full-size official-layout codec folder, written once per session for the codec loading and layout tests."""
import pytest

from tests.codec.reference.folder import write_official_folder


@pytest.fixture(scope="session")
def official_folder(data_dir, tmp_path_factory):
    """The official config files with full-size random weights in the official checkpoint formats, written by our
    former re-implementation of the official modules (tests/codec/reference); HuBERT's pos-conv in the old naming."""
    return write_official_folder(tmp_path_factory.mktemp("xcodec_full"), data_dir)
