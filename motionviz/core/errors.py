"""User-facing errors.  Anything raised as :class:`UserError` is shown to the user as one line
(``gr.Error`` in the app, ``error: ...`` and exit status 2 in the CLI), never as a traceback."""


class UserError(ValueError):
    """Bad input from the user (file, text, numbers).  The message is meant for the user."""


class DataNotFound(UserError, FileNotFoundError):
    """The data root (or a dataset inside it) is missing."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt or incompatible with what was asked."""
