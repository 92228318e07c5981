"""What the client scripts share: one line per check, a count of failures, and the exit."""

import sys

failures = 0


def check(name, ok, detail=""):
    """Prints `ok   name` or `FAIL name: detail` and counts the failure."""
    global failures
    print(("ok   " if ok else "FAIL ") + name + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures += 1


def finish():
    """Prints the count (the Rust tests look for `0 failures`) and exits non-zero on any."""
    print(f"{failures} failures")
    sys.exit(1 if failures else 0)
