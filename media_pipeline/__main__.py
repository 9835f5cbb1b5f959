"""``python -m media_pipeline probe FILE`` and ``... process FILE --out DIR``.

Exit status: 0 done; 2 the input (file, plan or arguments) was refused, with one line
``rejected: REASON`` on stderr; 1 the pipeline failed.
"""

from __future__ import annotations

import argparse
import re
import sys
import threading
from collections.abc import Sequence

from .errors import InvalidPlan, PipelineError, Rejected
from .limits import DEFAULT_LIMITS, Limits
from .pipeline import make_proxy, process
from .plan import BlurRegion, Caption, EditPlan, Watermark
from .probe import probe
from .profiles import DEFAULT_PROFILES, profiles_by_name
from .runner import ProgressCallback

EXIT_OK, EXIT_FAILED, EXIT_REJECTED = 0, 1, 2
_NUMBER = r"\d+(?:\.\d+)?"
_RANGE = re.compile(rf"^({_NUMBER})-({_NUMBER})$")
_BLUR = re.compile(rf"^(\d+),(\d+),(\d+),(\d+)(?:@({_NUMBER})-({_NUMBER}))?$")


class _Refused(Exception):
    """A command-line value that cannot be used; reported as ``rejected:``."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Refused(message)


def _time_range(value: str, what: str) -> tuple[float, float]:
    match = _RANGE.match(value)
    if not match:
        raise _Refused(f"{what} must be START-END in seconds, e.g. 1.5-12")
    return float(match.group(1)), float(match.group(2))


def _blur(value: str) -> BlurRegion:
    if value == "all" or value.startswith("all@"):
        start = end = None
        if value.startswith("all@"):
            start, end = _time_range(value[4:], "--blur time")
        return BlurRegion(whole_frame=True, start=start, end=end)
    match = _BLUR.match(value)
    if not match:
        raise _Refused("--blur must be X,Y,W,H or X,Y,W,H@START-END (or all[@START-END])")
    x, y, w, h = (int(match.group(i)) for i in range(1, 5))
    start = float(match.group(5)) if match.group(5) else None
    end = float(match.group(6)) if match.group(6) else None
    return BlurRegion(x=x, y=y, width=w, height=h, start=start, end=end)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m media_pipeline", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    probe_cmd = commands.add_parser("probe", help="print what a file holds, as JSON")
    probe_cmd.add_argument("file")
    proc = commands.add_parser("process", help="make the renditions and manifest.json")
    proc.add_argument("file")
    proc.add_argument("--out", required=True, metavar="DIR")
    proc.add_argument("--trim", metavar="START-END", help="seconds, e.g. 3-12.5")
    proc.add_argument("--blur", action="append", default=[], metavar="X,Y,W,H[@START-END]")
    audio = proc.add_mutually_exclusive_group()
    audio.add_argument("--strip-audio", action="store_true", help="no audio track")
    audio.add_argument("--mute", action="store_true", help="a silent audio track")
    proc.add_argument(
        "--caption", action="append", default=[], metavar="TEXT", help="one line each"
    )
    proc.add_argument("--watermark", metavar="IMAGE", help="PNG or JPEG logo, top right")
    proc.add_argument("--poster-time", type=float, metavar="SECONDS")
    proc.add_argument(
        "--profiles",
        metavar="NAMES",
        help="comma-separated, from: " + ",".join(p.name for p in DEFAULT_PROFILES),
    )
    proc.add_argument("--proxy", action="store_true", help="also write DIR/proxy.mp4")
    proc.add_argument("--timeout", type=float, metavar="SECONDS")
    proc.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def _plan(args: argparse.Namespace) -> EditPlan:
    trim_start = trim_end = None
    if args.trim:
        trim_start, trim_end = _time_range(args.trim, "--trim")
    return EditPlan(
        trim_start=trim_start,
        trim_end=trim_end,
        regions=tuple(_blur(value).as_track() for value in args.blur),
        audio="strip" if args.strip_audio else "mute" if args.mute else "keep",
        caption=Caption(tuple(args.caption)) if args.caption else None,
        watermark=Watermark(args.watermark) if args.watermark else None,
        poster_time=args.poster_time,
    )


def _progress_printer() -> ProgressCallback:
    last = [-1]

    def report(fraction: float) -> None:
        percent = int(fraction * 100)
        if percent != last[0]:
            last[0] = percent
            print(f"progress: {percent}%", file=sys.stderr, flush=True)

    return report


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
        if args.command == "probe":
            print(probe(args.file).to_json())
            return EXIT_OK
        plan = _plan(args)
        profiles = DEFAULT_PROFILES
        if args.profiles:
            try:
                profiles = profiles_by_name(
                    n.strip() for n in args.profiles.split(",") if n.strip()
                )
            except KeyError as exc:
                raise _Refused(str(exc.args[0])) from None
        limits = DEFAULT_LIMITS
        if args.timeout:
            limits = Limits(timeout_base_s=args.timeout, timeout_per_media_s=0)
        cancel = threading.Event()
        progress = None if args.quiet else _progress_printer()
        manifest = process(args.file, args.out, plan, profiles, limits, progress, cancel)
        if args.proxy:
            make_proxy(args.file, f"{args.out}/proxy.mp4", limits, cancel=cancel)
        for output in manifest.outputs:
            print(f"{output.file}\t{output.size}\t{output.sha256}")
        return EXIT_OK
    except (Rejected, InvalidPlan, _Refused) as exc:
        print(f"rejected: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_REJECTED
    except PipelineError as exc:
        print(f"error: {_one_line(exc.message)}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
