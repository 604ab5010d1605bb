"""Errors the engine raises on purpose. Their text is shown to users as is: one clear sentence."""


class VinpaintError(Exception):
    """Base class: anything a user can act on."""


class InputError(VinpaintError):
    """The frames, masks or settings handed in cannot be used (the message names the problem)."""


class OtherRunError(InputError):
    """The work directory holds a run of other frames or settings; each front end says how to start over there."""


class TrainingCancelled(VinpaintError):
    """Training stopped on request; a checkpoint was written first, so running again continues."""
