"""vinpaint: video inpainting by internal learning, as a library, a daemon and an OpenFX node.

The root holds only what every part shares and nothing heavy: the version, the error base (`vinpaint.errors`)
and the one crash-safe file write (`vinpaint.files`). Importing it loads no torch, no OpenCV and no ZeroMQ.
"""

__version__ = "0.1.0"
