"""The `dbmtl` command: predict, serve, embed, evaluate, benchmark, compare, train, prepare-corpus,
calibrate, export, curves, learning-curve (the order of `dbmtl --help`)."""
from __future__ import annotations

import logging
import sys
import traceback

from .parser import build_parser


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    """Exit codes: 0 done; 2 bad input, options, config or model files (nothing was lost); 1 the run
    failed (disk full, I/O error, training diverged, an internal error); 130 interrupted (Ctrl-C). No
    traceback unless -v."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    name = f"dbmtl {args.command}"
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (ValueError, TypeError, FileNotFoundError) as exc:
        if args.verbose:
            traceback.print_exc()
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        if args.verbose:
            traceback.print_exc()
        what = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
        print(f"{name}: error: {what}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # the last boundary: a bug, said in one line (the traceback with -v)
        if args.verbose:
            traceback.print_exc()
        print(f"{name}: internal error: {type(exc).__name__}: {exc} (run with -v for details)", file=sys.stderr)
        return EXIT_FAILED

