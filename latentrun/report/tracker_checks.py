"""Whether the experiment trackers `train.loggers` names can work here, asked before a run
directory is made: a tracker that is not installed or not set up is one line and exit status 2,
not a traceback from inside the tracker's library and a crashed run.

Nothing here touches the network: MLflow's client is built (which checks its tracking URI and
store without contacting a server) and W&B's credentials are looked up where W&B keeps them.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from latentrun.core.errors import ConfigError
from latentrun.core.text import printable

_EXTRAS = {"wandb": "wandb", "mlflow": "mlflow"}
_WANDB_QUIET_MODES = ("offline", "disabled", "dryrun")  # modes that never talk to a W&B server


def require(name: str) -> Any:
    """The tracker's package, imported; ConfigError naming the extra to install when it is missing."""
    try:
        return __import__(name)
    except ImportError:
        raise ConfigError(
            [f"train.loggers: {name} is not installed; pip install -e '.[{_EXTRAS[name]}]' or drop it from the list"]
        ) from None


def check(names: list[str]) -> None:
    """ConfigError before a run starts when a chosen tracker is missing or cannot be used as set up."""
    for name in names:
        if name == "mlflow":
            _check_mlflow(require(name))
        elif name == "wandb":
            require(name)
            _check_wandb()


def _check_mlflow(mlflow: Any) -> None:
    """MLflow's client refuses a tracking URI it has no store for, and (MLflow 3) a file store
    without MLFLOW_ALLOW_FILE_STORE, when it is built."""
    uri = mlflow.get_tracking_uri()
    try:
        mlflow.tracking.MlflowClient()
    except Exception as error:  # whatever MLflow raises for a store it cannot use
        if urlparse(uri).scheme in ("", "file") and "MLFLOW_ALLOW_FILE_STORE" in str(error):
            fix = (
                "set MLFLOW_ALLOW_FILE_STORE=true to use it anyway, or set MLFLOW_TRACKING_URI to a server (http://...)"
            )
            raise ConfigError(
                [f"train.loggers: mlflow: the tracking URI {uri} is a file store, which MLflow refuses; {fix}"]
            ) from None
        reason = printable((str(error).strip().splitlines() or [type(error).__name__])[0], limit=160)
        raise ConfigError(
            [
                f"train.loggers: mlflow cannot use the tracking URI {uri} ({reason}); "
                "set MLFLOW_TRACKING_URI to a tracking server (http://host:5000) or a store MLflow supports"
            ]
        ) from None


def _check_wandb() -> None:
    """W&B online needs credentials: WANDB_API_KEY, or what `wandb login` wrote to ~/.netrc."""
    mode = os.environ.get("WANDB_MODE", "online").lower()
    if mode in _WANDB_QUIET_MODES or os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname or "api.wandb.ai"
    if _netrc_has(host):
        return
    raise ConfigError(
        [
            f"train.loggers: wandb is online but not logged in to {host}; run `wandb login`, set WANDB_API_KEY, "
            "or set WANDB_MODE=offline to log under the run dir for a later `wandb sync`"
        ]
    )


def _netrc_has(host: str) -> bool:
    """Whether the netrc file (NETRC, else ~/.netrc) holds a password for `host`."""
    path = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
    try:
        entry = netrc.netrc(str(path)).authenticators(host)
    except (OSError, netrc.NetrcParseError):
        return False
    return entry is not None and bool(entry[2])
