"""Thin commands: argparse, one or two library calls, one line per target."""
