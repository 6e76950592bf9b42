"""Training on Ray Train. `rs.train(config_or_path, overrides=...)` trains one experiment and returns a
`TrainResult`; the package stays importable as `rs.train.loop`, `rs.train.api`, …"""

from __future__ import annotations

import sys
import types
from typing import Any


class _CallableModule(types.ModuleType):
    # `rs.train` is both this package and the notebook API; a module cannot be called, so the
    # package's class gains __call__ (module __class__ assignment is supported since Python 3.5).
    def __call__(self, config: Any, overrides: list[str] | tuple[str, ...] = (), **kwargs: Any) -> Any:
        from rs.train.api import fit

        return fit(config, overrides, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
