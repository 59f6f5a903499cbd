"""The `humanllm` command. Thin: parses arguments, calls the library, prints, sets the exit code.

Each module in `COMMAND_MODULES` registers its commands with `add_commands(subparsers)`. Exit
codes are in one table, `common.EXIT_CODES`; errors a command raises (its own or the library's)
are mapped to a code and a message in one table, `ERRORS`, by class. Everything written on
stderr passes through `redact`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence
from importlib import import_module

import attrs

from ..redact import RedactingStream
from .common import (DISK_FULL, EXIT_CODES, EXIT_FAILURES, EXIT_INTERRUPTED, EXIT_IO, EXIT_OK, EXIT_SPEC,
                     EXIT_USAGE, print_diagnostics)

__all__ = ["COMMAND_MODULES", "DISK_FULL", "ERRORS", "EXIT_CODES", "EXIT_FAILURES", "EXIT_INTERRUPTED", "EXIT_IO",
           "EXIT_OK", "EXIT_SPEC", "EXIT_USAGE", "build_parser", "handling", "main", "print_diagnostics"]

# Each module has `add_commands(subparsers)` and imports its heavy dependencies only when run.
COMMAND_MODULES = ("humanllm_dsl.cli.spec", "humanllm_dsl.cli.compile", "humanllm_dsl.cli.train",
                   "humanllm_dsl.cli.eval", "humanllm_dsl.annotate.cli", "humanllm_dsl.draft.cli",
                   "humanllm_dsl.view.cli", "humanllm_dsl.lsp.cli", "humanllm_dsl.cli.publish")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humanllm",
        description="Write psychological patterns in .hpat specs, check them, and compile them "
                    "into datasets, models and evaluations.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n" + "\n".join(f"  {code:<4} {meaning}" for code, meaning in EXIT_CODES.items())
               + "\n\nRun `humanllm COMMAND --help` for each command.")
    parser.add_argument("--version", action="version", version=f"humanllm {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in COMMAND_MODULES:
        import_module(module).add_commands(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("humanllm")
    except PackageNotFoundError:
        return "dev"


# ---- errors -----------------------------------------------------------------------------------
Message = Callable[[BaseException, argparse.Namespace], "str | None"]


@attrs.frozen
class Handling:
    """What the top level does with an error: the exit code (or a function of the error giving
    it) and the text for stderr (None: print nothing)."""

    code: int | Callable[[BaseException], int]
    message: Message

    def exit_code(self, exc: BaseException) -> int:
        return self.code(exc) if callable(self.code) else self.code


def _error(text: Callable[[BaseException, argparse.Namespace], str] = lambda exc, _args: str(exc)) -> Message:
    """`humanllm COMMAND: error: TEXT`."""
    return lambda exc, args: f"humanllm {args.command}: error: {text(exc, args)}"


def _io_message(exc: OSError, _args) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    if exc.errno in DISK_FULL:
        return (f"{where}no space left on device. Nothing half-written was kept and finished results are "
                f"safe; free some space and run the same command again to resume.")
    return f"{where}{exc.strerror or exc}"


def _diagnostics(exc, _args) -> str:
    return "\n".join(d.render() for d in exc.diagnostics)


def _work(args) -> str:
    return str(args.out / "work")


# Class (by dotted name, so that nothing heavy is imported to list it) -> handling. An error is
# looked up along its class's MRO: the most specific class listed wins.
ERRORS: dict[str, Handling] = {
    "builtins.BrokenPipeError": Handling(EXIT_OK, lambda exc, args: None),
    "builtins.KeyboardInterrupt": Handling(EXIT_INTERRUPTED, lambda exc, args: "interrupted"),
    "builtins.OSError": Handling(EXIT_IO, _error(_io_message)),
    "humanllm_dsl.syntax.diagnostics.HpatError": Handling(EXIT_SPEC, _diagnostics),
    "humanllm_dsl.compiler.loader.UsageError": Handling(EXIT_USAGE, _error()),
    "humanllm_dsl.cli.common.InputError": Handling(EXIT_SPEC, _error()),
    # compile
    "humanllm_dsl.compiler.plan.PlanError": Handling(
        EXIT_SPEC, _error(lambda exc, args: f"the dataset cannot be planned: {exc}")),
    "humanllm_dsl.compiler.saved_programs.SavedProgramError": Handling(EXIT_USAGE, _error()),
    "humanllm_dsl.runtime.lmconfig.ConfigError": Handling(EXIT_USAGE, _error()),
    "humanllm_dsl.runtime.pipeline.LMUnavailable": Handling(EXIT_USAGE, _error(
        lambda exc, args: f"the LM cannot be used: {exc}\nNothing was lost: finished work is in {_work(args)}; "
                          f"fix the model, key or address and run the same command again.")),
    "humanllm_dsl.runtime.store.JsonFileError": Handling(EXIT_SPEC, _error()),  # a damaged work file or run totals
    "humanllm_dsl.runtime.workers.WorkerFailed": Handling(EXIT_SPEC, _error(
        lambda exc, args: f"{exc}\nFinished work is kept in {_work(args)}; run the same command again to resume.")),
    "humanllm_dsl.runtime.compile.Interrupted": Handling(EXIT_INTERRUPTED, lambda exc, args: (
        f"\ninterrupted: {exc}; every finished result is saved in {_work(args)}.\n"
        f"Run the same command again to resume.")),
    # eval, align, optimize
    "humanllm_dsl.evaluate.data.EvalDataError": Handling(EXIT_SPEC, _error()),
    "humanllm_dsl.evaluate.run.EvalUsageError": Handling(EXIT_USAGE, _error()),
    "humanllm_dsl.evaluate.lms.LMSpecError": Handling(EXIT_USAGE, _error()),
    "humanllm_dsl.evaluate.align.AlignDataError": Handling(EXIT_SPEC, _error()),
    "humanllm_dsl.evaluate.optimize.OptimizeError": Handling(lambda exc: EXIT_SPEC if exc.data else EXIT_USAGE,
                                                             _error()),
    # train
    "humanllm_dsl.train.config.ConfigError": Handling(EXIT_USAGE, _error()),
    "humanllm_dsl.train.trainer.ModelError": Handling(EXIT_USAGE, _error()),
    "humanllm_dsl.train.data.DataError": Handling(EXIT_SPEC, _error()),
    "humanllm_dsl.train.template.TemplateError": Handling(EXIT_SPEC, _error()),
    "humanllm_dsl.trackers.TrackerError": Handling(EXIT_USAGE, _error()),
    # push
    "humanllm_dsl.hub.PushError": Handling(EXIT_USAGE, _error()),
}


def handling(exc: BaseException) -> Handling | None:
    """The entry of `ERRORS` for `exc`'s class or its nearest listed base class, if any."""
    for cls in type(exc).__mro__:
        found = ERRORS.get(f"{cls.__module__}.{cls.__qualname__}")
        if found is not None:
            return found
    return None


# ---- main -------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    stderr = sys.stderr
    sys.stderr = RedactingStream(stderr)  # no secret in any message, whoever prints it
    try:
        return _main(argv)
    finally:
        sys.stderr = stderr


def _main(argv: Sequence[str] | None) -> int:
    from ..runtime.outdir import claim, refuse_file

    parser = build_parser()
    args = parser.parse_args(argv)
    out = getattr(args, "out", None)  # every command that writes takes -o/--out DIR
    kind = getattr(args, "out_kind", None)  # ... and says what kind of folder it makes there
    try:
        if out is not None:
            refuse_file(out)
        with claim(out, kind(args) if callable(kind) else kind) if kind and out is not None else contextlib.nullcontext():
            return args.func(args)
    except BaseException as exc:  # noqa: BLE001 - looked up in ERRORS; anything not listed goes on up
        found = handling(exc)
        if found is None:
            raise
        message = found.message(exc, args)
        if message is not None:
            print(message, file=sys.stderr)
        return found.exit_code(exc)
