"""HParams records: value types TensorBoard shows, and which endings get an end record."""

from support import SMOKE
from tensorboard.plugins.hparams import api_pb2, metadata

from latentrun import config
from latentrun.report import hparams


def test_flat_hparams_keep_types_and_drop_nulls():
    flat = hparams.flat_hparams(config.load(SMOKE), parameters=123)
    assert flat["parameters"] == 123 and flat["model.name"] == "latent_transformer"
    assert flat["optimizer.lr"] == 0.001 and flat["dataset.lsb_first"] is True
    assert "dataset.operand_width" not in flat  # null in the config


def test_session_start_types():
    summary = hparams.session_start({"flag": True, "lr": 0.5, "steps": 3, "name": "x"})
    data = metadata.parse_session_start_info_plugin_data(summary.value[0].metadata.plugin_data.content)
    assert data.hparams["flag"].WhichOneof("kind") == "bool_value"  # not 1.0, as add_hparams would write
    assert data.hparams["steps"].number_value == 3 and data.hparams["name"].string_value == "x"


def test_session_end_only_for_finished_or_crashed():
    finished = hparams.session_end("finished")
    data = metadata.parse_session_end_info_plugin_data(finished.value[0].metadata.plugin_data.content)
    assert data.status == api_pb2.STATUS_SUCCESS
    crashed = hparams.session_end("crashed")
    data = metadata.parse_session_end_info_plugin_data(crashed.value[0].metadata.plugin_data.content)
    assert data.status == api_pb2.STATUS_FAILURE
    assert hparams.session_end("stopped") is None and hparams.session_end("interrupted") is None
