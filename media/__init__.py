"""Pictures and clips on disk: reading videos, image sequences and compositor frames, writing results atomically,
the comparison pictures, and the generated sample clip. The engine works on arrays; this package turns files
into arrays and back."""
