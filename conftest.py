import eventlet

eventlet.monkey_patch()

from hypothesis import settings  # noqa: E402 - after monkey-patching, like everything else

# Hypothesis fails an example slower than 200 ms by default: a timing assertion, which a loaded
# 2-core machine trips (test_qris's round trip took 264 ms once). Speed is measured by
# `make bench`, never asserted in tests.
settings.register_profile("mpp", deadline=None)
settings.load_profile("mpp")
