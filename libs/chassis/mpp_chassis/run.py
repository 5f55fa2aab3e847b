"""``python -m mpp_chassis.run`` is ``nameko run`` (same arguments) without eventlet's banner.

Importing eventlet (nameko's ``run`` does, first thing) warns ``EventletDeprecationWarning``
with eight lines of text on every start of every service. The mall knows (nameko runs on
eventlet; see docs/architecture.md); the banner hides the lines that matter. The filter
matches that one message, so any other warning still shows.

nameko's CLI imports ``pkg_resources``, which setuptools 81 removes: setuptools is a declared
dependency of this package, pinned below 81 (constraints.txt), and the notice setuptools 80
prints on that import (pin below 81: done) is filtered the same way.
"""

from __future__ import annotations

import sys
import warnings

EVENTLET_BANNER = r"\s*Eventlet is deprecated"
PKG_RESOURCES_NOTICE = r"pkg_resources is deprecated as an API"


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore", message=EVENTLET_BANNER, category=Warning)
    warnings.filterwarnings("ignore", message=PKG_RESOURCES_NOTICE, category=UserWarning)
    from nameko.cli.main import main as nameko_main

    sys.argv = ["nameko", "run", *(sys.argv[1:] if argv is None else argv)]
    return nameko_main() or 0


if __name__ == "__main__":
    sys.exit(main())
