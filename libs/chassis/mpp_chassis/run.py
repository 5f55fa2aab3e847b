"""``python -m mpp_chassis.run`` is ``nameko run`` (same arguments) without eventlet's banner.

Importing eventlet (nameko's ``run`` does, first thing) warns ``EventletDeprecationWarning``
with eight lines of text on every start of every service. The mall knows (nameko runs on
eventlet; see docs/architecture.md); the banner hides the lines that matter. The filter
matches that one message, so any other warning still shows.

nameko's CLI imports ``pkg_resources``, which setuptools 81 removes: setuptools is a declared
dependency of this package, pinned below 81 (constraints.txt), and the notice setuptools 80
prints on that import (pin below 81: done) is filtered the same way.

It also tells kombu, before anything connects, that librabbitmq is absent
(:func:`prefer_py_amqp`).
"""

from __future__ import annotations

import sys
import warnings

EVENTLET_BANNER = r"\s*Eventlet is deprecated"
PKG_RESOURCES_NOTICE = r"pkg_resources is deprecated as an API"


def prefer_py_amqp() -> None:
    """Make kombu's probe for librabbitmq fail at once.

    For an ``amqp://`` URI kombu picks the transport per ``Connection``: it first tries
    ``import librabbitmq`` (``kombu.transport.supports_librabbitmq``). Python does not remember
    a failed import, so each probe searched every ``sys.path`` entry again, and nameko builds a
    ``Connection`` for every publish: each RPC request and each reply paid ~0.3 ms of CPU for
    it, over half of a publish (issue 20; bench/README.md). Requests and replies no longer
    build one (:mod:`mpp_chassis.transient`); nameko's other publishers still do. The mall
    runs on py-amqp (its publisher confirms and returned messages); librabbitmq is neither
    installed nor wanted, and marking it absent in ``sys.modules`` makes the import raise
    ``ImportError`` without a search.
    """
    sys.modules.setdefault("librabbitmq", None)


def main(argv: list[str] | None = None) -> int:
    prefer_py_amqp()
    warnings.filterwarnings("ignore", message=EVENTLET_BANNER, category=Warning)
    warnings.filterwarnings("ignore", message=PKG_RESOURCES_NOTICE, category=UserWarning)
    from nameko.cli.main import main as nameko_main

    sys.argv = ["nameko", "run", *(sys.argv[1:] if argv is None else argv)]
    return nameko_main() or 0


if __name__ == "__main__":
    sys.exit(main())
