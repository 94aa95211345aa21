"""The worker's errors; each maps to a process exit code.

WorkerError          exit 1: retrying may help (storage, network, FFmpeg crashed)
└── BadInputError    exit 2: the source itself is unusable; a retry cannot fix it
"""


class WorkerError(Exception):
    exit_code = 1
    reason = "Error"


class BadInputError(WorkerError):
    exit_code = 2
    reason = "BadInput"
