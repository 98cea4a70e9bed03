"""The retrainer's user-facing failure: bad input it cannot go on with. The CLI prints it and exits 2."""


class RetrainError(Exception):
    pass
