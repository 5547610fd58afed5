import pytest
from PIL import Image


@pytest.fixture
def write_image():
    """A function ``write_image(path, size=(16, 16), color=(128, 128, 128))`` that saves a one-colour image.

    ``size`` is (width, height) as in PIL; the format follows the suffix;
    parent folders are created. A solid colour survives JPEG within a few
    levels, so tests can tell images apart by it.
    """

    def write(path, size=(16, 16), color=(128, 128, 128)):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, tuple(color)).save(path)
        return path

    return write
