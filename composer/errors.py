"""One exception root; subclasses say who is at fault. Only the CLI prints them."""

from __future__ import annotations

from collections.abc import Sequence

# Exit codes, the same for every verb that compares (plan, apply, reconcile, diff, lock --check).
EXIT_OK = EXIT_NO_CHANGES = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_POLICY = 3
EXIT_STALE_LOCK = 4  # vcomp plan: a lock no longer matches its profile (fix: vcomp lock PROFILE); nothing planned


class ComposerError(Exception):
    """Root of every error the product raises on purpose.

    ``message`` states the fact and the place; ``hint`` says how to fix it.
    """

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UserError(ComposerError):
    """Bad input from the user: a recipe, profile, argument or file they wrote."""


class InvalidPackage(ComposerError):
    """A package (or archive) that is malformed, tampered with or hostile."""


class VerificationError(InvalidPackage):
    """A signature, digest or manifest check failed."""


class UnsafeArchive(InvalidPackage):
    """An archive member would escape the extraction root or is otherwise hostile."""


class ToolError(ComposerError):
    """A host tool is missing or failed."""


class FetchError(ComposerError):
    """A download failed or a remote source does not have what was asked for."""


class InternalError(ComposerError):
    """A bug in the composer itself."""


def combine(errors: Sequence[ComposerError], *, summary: str) -> ComposerError:
    """One error for several found at once (validation reports all of them), keeping their class."""
    if len(errors) == 1:
        return errors[0]
    cls = type(errors[0]) if all(type(e) is type(errors[0]) for e in errors) else ComposerError
    combined = cls(summary + "\n" + "\n".join(f"  {e.message}" for e in errors),
                   hint=next((e.hint for e in errors if e.hint), ""))
    combined.errors = list(errors)  # type: ignore[attr-defined]
    return combined


class SystemFault(ComposerError):
    """The machine refused an operation (disk full, read-only, permissions): nobody's bug, one clear line."""


class LockBusy(ComposerError):
    """Another vcomp process holds the lock and the caller asked not to wait."""
