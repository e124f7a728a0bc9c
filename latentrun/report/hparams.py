"""TensorBoard HParams records, written into a run's own event file.

`SummaryWriter.add_hparams` would open a sub-run folder per call, so `tensorboard --logdir runs`
would show every run twice. Writing only the session start and end records into the run's own
events file keeps one entry per run; TensorBoard then builds the HParams table from all runs'
session records, and its metric columns are the last value of each scalar tag (`val/exact_match`,
`summary/best_exact_match`, ...), so the final metrics attach themselves. No experiment record is
written on purpose: TensorBoard would take the first it finds as the whole table's schema.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

from latentrun.config import flatten

_END_STATUS = {"finished": api_pb2.STATUS_SUCCESS, "crashed": api_pb2.STATUS_FAILURE}


def flat_hparams(config: Mapping[str, Any], parameters: int) -> dict[str, Any]:
    """A resolved config as dotted keys with values TensorBoard can show, plus the parameter count;
    nulls are left out (the HParams tab has no null) and anything else becomes text."""
    flat: dict[str, Any] = {"parameters": parameters}
    for key, value in flatten(config).items():
        if value is not None:
            flat[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return flat


def session_start(hparams: Mapping[str, Any]) -> Summary:
    """The record that puts a run in TensorBoard's HParams tab with these hyperparameter values."""
    info = plugin_data_pb2.SessionStartInfo(start_time_secs=time.time())
    for key, value in hparams.items():
        # bool before int: True is an int in Python but a boolean column in TensorBoard.
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, (int, float)):
            info.hparams[key].number_value = float(value)
        else:
            info.hparams[key].string_value = str(value)
    return _summary(metadata.SESSION_START_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_start_info=info))


def session_end(status: str) -> Summary | None:
    """The record that marks a run finished (success) or crashed (failure); None for a run that
    stopped resumably, which TensorBoard keeps showing as still going."""
    if status not in _END_STATUS:
        return None
    info = plugin_data_pb2.SessionEndInfo(status=_END_STATUS[status], end_time_secs=time.time())
    return _summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(session_end_info=info))


def _summary(tag: str, data: plugin_data_pb2.HParamsPluginData) -> Summary:
    data.version = metadata.PLUGIN_DATA_VERSION
    plugin = SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=data.SerializeToString())
    return Summary(value=[Summary.Value(tag=tag, metadata=SummaryMetadata(plugin_data=plugin))])
