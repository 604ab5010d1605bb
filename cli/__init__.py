"""vinpaint: video inpainting by internal learning, as a library, a daemon and an OpenFX node."""

__version__ = "0.1.0"
