"""net.summary(): layers, output shapes and parameter counts, totals split by trainable."""
import nativebp as nb


def _net():
    return nb.Sequential([nb.Dense(10, 32), nb.BatchNorm1d(32), nb.ReLU(), nb.Dropout(0.1),
                          nb.Residual([nb.Dense(32, 32), nb.Tanh()]), nb.Dense(32, 3, bias=False)], seed=0)


def _row(text, index):
    return next(line.split() for line in text.splitlines() if line.split()[:1] == [index])


def test_rows_show_each_layer_its_output_shape_and_parameter_count():
    text = _net().summary(print_fn=None)
    assert _row(text, "0")[1:] == ["Dense(10", "->", "32)", "(None,", "32)", "352"]
    assert _row(text, "1")[-1] == "64" and _row(text, "3")[1] == "Dropout(p=0.1)"
    assert _row(text, "4")[-1] == "1,056" and _row(text, "4.block.0")[-1] == "1,056"  # block inside its Residual
    assert _row(text, "5")[-3:] == ["(None,", "3)", "96"]


def test_totals_match_the_network_and_split_frozen_parameters():
    net = _net()
    net.parameters()[0].trainable = False  # 0.weight: 320 values
    text = net.summary(print_fn=None)
    total = net.num_parameters()
    assert f"Total params: {total:,} ({total * 4 / 1024:.2f} KB)" in text
    assert f"Trainable params: {total - 320:,}" in text and "Non-trainable params: 320" in text
    assert "Buffers (BatchNorm running mean, variance, batch count): 65" in text


def test_summary_prints_unless_print_fn_is_none(capsys):
    net = _net()
    text = net.summary()
    assert capsys.readouterr().out == text + "\n"
    net.summary(print_fn=None)
    assert capsys.readouterr().out == ""
    lines = []
    assert net.summary(print_fn=lines.append) == lines[0]
