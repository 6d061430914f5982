"""Trace-file readers, one module per format, registered by name in ``TRACE_FORMATS``
(see :mod:`.base`). Every module of this package is imported here, so adding a format
means adding one file that calls :func:`.base.register`.
"""

import importlib
import pkgutil

from testbed.traces.formats.base import (TRACE_FORMATS, TraceFormat, TraceOptionError,
                                         register)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["TRACE_FORMATS", "TraceFormat", "TraceOptionError", "register"]
