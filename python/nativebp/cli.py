"""Command line: ``python -m nativebp demo`` (and more subcommands, see --help)."""
from __future__ import annotations

import argparse
import sys


def _demo(args):
    from .demo import main as demo_main
    return demo_main(epochs=args.epochs, threads=args.threads, plot=args.plot)


def build_parser():
    p = argparse.ArgumentParser(prog="python -m nativebp", description="nativebp: MLPs trained in C++.")
    sub = p.add_subparsers(dest="command", metavar="command")
    d = sub.add_parser("demo", help="train an MLP on the bundled UCI digits and report accuracy, time and gradient check")
    d.add_argument("--epochs", type=int, default=50, help="training epochs (default 50)")
    d.add_argument("--threads", type=int, default=None, help="engine threads (default: all cores)")
    d.add_argument("--plot", default=None, metavar="PNG", help="save the loss/accuracy curves to this PNG (needs matplotlib)")
    d.set_defaults(func=_demo)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args) or 0
