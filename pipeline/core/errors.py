"""Errors a user can fix. The CLI prints them as one paragraph without a traceback."""


class UserError(Exception):
    """Bad input: a recipe, a dataset, a checkpoint, a device profile or a path the user gave."""


class RecipeError(UserError):
    """The recipe does not validate; the message lists every field at fault. `missing_extras`: the
    pip extras it asks for that are not installed (when those are its only problems, installing
    them makes it valid)."""

    def __init__(self, message: str, missing_extras: list[str] = (), only_missing_extras: bool = False):
        super().__init__(message)
        self.missing_extras, self.only_missing_extras = list(missing_extras), only_missing_extras


class DataError(UserError):
    """A dataset is missing or malformed; the message says where it looked and how to get it."""


class CheckpointError(UserError):
    """A checkpoint does not load into the model it was meant for."""


class DeviceProfileError(UserError):
    """A device profile is unknown or invalid."""


class IntegrityError(UserError):
    """A file of a finished run changed or vanished since it was written: nothing about it can be trusted.
    Commands exit 2 ("cannot judge") on it, like a gate that cannot judge."""


class StageError(UserError):
    """A stage cannot do what the recipe asks (its message says which stage and why)."""


def what_failed(error: BaseException) -> str:
    """`Type: first line` of an error raised by user code, cut to 300 characters: enough to name the
    fault in a one-paragraph message, where the whole traceback is for `--debug`."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0][:300]}" if lines else type(error).__name__
