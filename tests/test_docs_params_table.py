"""The README's parameter table (tools/docs/params_table.py) follows the layers' own keys and
defaults."""
import pytest

from focal_loss_layer.params import PARAM_KEYS, SOFTMAX_PARAM_KEYS
from tools.docs import params_table


def test_one_row_per_key_of_either_layer_with_the_layers_defaults():
    rows = params_table.params_table().splitlines()[2:]
    keys = [row.split(" | ")[0].strip("| `") for row in rows]
    assert sorted(keys) == sorted(set(PARAM_KEYS) | set(SOFTMAX_PARAM_KEYS))
    by_key = {row.split(" | ")[0].strip("| `"): row.split(" | ") for row in rows}
    assert by_key["normalization"][2] == "sigmoid `'batch_size'`, softmax `'valid'`"
    assert by_key["focusing_parameter"][2] == "`2`"
    assert by_key["num_anchors"][2] == "`1`"
    assert "`'positives'` (sigmoid only)" in by_key["normalization"][3]


def test_a_key_missing_from_the_table_stops_make_docs(monkeypatch):
    keys = dict(params_table.KEYS)
    del keys["label_smoothing"]
    monkeypatch.setattr(params_table, "KEYS", keys)
    with pytest.raises(ValueError, match="differ from the layers' keys"):
        params_table.params_table()
