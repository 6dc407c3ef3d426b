"""The runner's errors: each one becomes one clear line on stderr and an exit code."""

from __future__ import annotations

# Exit codes (documented in --help).
EXIT_OK = 0
EXIT_FAILURE = 1  # the batch failed or a check did not pass
EXIT_INPUT = 2  # bad command line or input files
EXIT_UNAVAILABLE = 3  # a service cannot be reached / refused the token
EXIT_NOT_FOUND = 4  # unknown assignment / batch, missing anchors
EXIT_TIMEOUT = 5  # --completion-timeout passed before the batch finished
EXIT_CONFLICT = 6  # the service refused the request (409 and other 4xx)


class RunnerError(Exception):
    exit_code = EXIT_FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def line(self) -> str:
        return f"error: {self.message}" + (f" — {self.hint}" if self.hint else "")


class InputError(RunnerError):
    exit_code = EXIT_INPUT


class ServiceUnavailable(RunnerError):
    exit_code = EXIT_UNAVAILABLE


class NotFound(RunnerError):
    exit_code = EXIT_NOT_FOUND


class CompletionTimeout(RunnerError):
    exit_code = EXIT_TIMEOUT


class ServiceRefused(RunnerError):
    exit_code = EXIT_CONFLICT


class BatchFailed(RunnerError):
    exit_code = EXIT_FAILURE
