"""Config loading: the schema's values, overrides, and one-line key-path errors."""

import importlib.util
from pathlib import Path

import pytest

from mcdropout.config import (
    DEFAULT_CONFIG_TEXT,
    ConfigError,
    SklearnData,
    TableData,
    apply_overrides,
    load_config,
    parse_override,
    read_yaml,
    validate_config,
)

CONFIGS = Path(__file__).parents[2] / "configs"


def test_default_is_the_shipped_digits_file():
    assert (CONFIGS / "digits.yaml").read_text(encoding="utf-8") == DEFAULT_CONFIG_TEXT


def test_default_values():
    config = load_config()
    assert config.name == "digits"
    assert isinstance(config.data, SklearnData)
    assert config.data.name == "digits"
    assert config.mc.n_passes == 50
    assert config.calibration.enabled is True
    assert config.model.args == {"hidden_sizes": [256, 128], "dropout": 0.3}
    assert [shift.kind for shift in config.ood.shifts] == ["gaussian_noise", "rotation"]


@pytest.mark.parametrize(
    "name", ["digits", "breast_cancer", "diabetes", "mnist", "cifar10"]
)
def test_shipped_configs_validate(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.name == name


def test_csv_template_validates_with_a_data_file(tmp_path):
    table = tmp_path / "table.csv"
    table.write_text("a,b,label\n1,2,x\n3,4,y\n")
    config = load_config(CONFIGS / "csv_template.yaml", [f"data.path={table}"])
    assert isinstance(config.data, TableData)
    assert config.data.path == table


def test_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_run.yaml"
    path.write_text("model: {architecture: mlp}\ndata: {source: sklearn, name: iris}\n")
    assert load_config(path).name == "my_run"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mc.n_passes=100", (["mc", "n_passes"], 100)),
        ("model.train.lr=1.0e-3", (["model", "train", "lr"], 1e-3)),
        ("model.cache=false", (["model", "cache"], False)),
        ("model.args.hidden_sizes=[8, 4]", (["model", "args", "hidden_sizes"], [8, 4])),
        ("model.checkpoint=null", (["model", "checkpoint"], None)),
        ("data.target=price in $", (["data", "target"], "price in $")),
        ("data.path=a=b.csv", (["data", "path"], "a=b.csv")),
    ],
)
def test_parse_override_types_values_as_yaml(text, expected):
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["mc.n_passes", "=3", "mc..n=3", "mc n=3"])
def test_parse_override_refuses_malformed(text):
    with pytest.raises(ConfigError, match=r"expected KEY=VALUE with a dotted KEY"):
        parse_override(text)


def test_apply_overrides_creates_sections_and_indexes_lists():
    raw = {"mc": {"n_passes": 3}, "ood": {"shifts": [{"kind": "rotation"}]}}
    result = apply_overrides(
        raw, ["report.n_bins=5", "ood.shifts.0.severities=[10]", "mc.n_passes=4"]
    )
    assert result == {
        "mc": {"n_passes": 4},
        "ood": {"shifts": [{"kind": "rotation", "severities": [10]}]},
        "report": {"n_bins": 5},
    }
    assert raw["mc"]["n_passes"] == 3  # the input is not changed


def test_apply_overrides_refuses_a_key_below_a_value():
    with pytest.raises(ConfigError, match=r"mc\.n_passes is not a section"):
        apply_overrides({"mc": {"n_passes": 3}}, ["mc.n_passes.x=1"])


def test_overrides_are_checked_by_the_schema():
    config = load_config(overrides=["mc.n_passes=7", "data.split.test=0.5"])
    assert config.mc.n_passes == 7
    assert config.data.split.test == 0.5


# Each bad value is reported as "key.path: what was expected, got what".
@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("mc.n_passes=-3", r"^mc\.n_passes: expected a positive integer, got -3$"),
        ("mc.n_passes=2.5", r"^mc\.n_passes: expected a positive integer, got 2\.5$"),
        ("mc.n_passes=many", r"^mc\.n_passes: expected a positive integer, got 'many'"),
        ("mc.n_pases=3", r"^mc\.n_pases: unknown key; did you mean 'n_passes'\?$"),
        ("mcc.n_passes=3", r"^mcc: unknown key; did you mean 'mc'\?$"),
        ("mc.zzz=3", r"^mc\.zzz: unknown key; expected one of n_passes, mode, "),
        ("mc.mode=module", r"^mc\.mode: expected one of .*got 'module'; did you mean"),
        ("model.cache=maybe", r"^model\.cache: expected true or false, got 'maybe'$"),
        ("model.train.lr=0", r"^model\.train\.lr: expected a positive number, got 0"),
        (
            "model.args.dropout=1.5",
            r"^model\.args\.dropout: expected a number in \[0, 1\)",
        ),
        (
            "model.args.dropot=0.1",
            r"^model\.args\.dropot: unknown key; did you mean 'dropout'",
        ),
        (
            "model.args.hidden_sizes=[]",
            r"^model\.args\.hidden_sizes: list should have at least 1",
        ),
        (
            "model.architecture=vgg",
            r"^model\.architecture: expected one of 'mlp', 'small_cnn'",
        ),
        (
            "model.architecture=no_such_module_x:make",
            r"^model\.architecture: cannot import",
        ),
        (
            "model.checkpoint=/no/such/file.pt",
            r"^model\.checkpoint: file not found: /no/such/file\.pt$",
        ),
        (
            "data.source=csvv",
            r"^data\.source: expected one of 'sklearn', 'csv'.*did you mean 'csv'",
        ),
        ("data.name=mnist", r"^data\.name: expected one of 'digits'"),
        ("data.pth=x", r"^data\.pth: unknown key; expected one of split, batch_size"),
        ("data.split.val=0.8", r"^data\.split: expected `val` \+ `test` < 1"),
        (
            "data.split.test=1",
            r"^data\.split\.test: expected a number in \(0, 1\), got 1$",
        ),
        ("ood.shifts.0.kind=blur", r"^ood\.shifts\[0\]\.kind: expected one of"),
        (
            "ood.shifts.1.severities=[]",
            r"^ood\.shifts\[1\]\.severities: list should have",
        ),
        ("mc=3", r"^mc: expected a mapping \(a YAML section\), got 3$"),
        ("name=a/b", r"^name: expected letters, digits"),
        ("name=..", r"^name: expected letters.*not dots alone"),
        ("report.convergence=1", r"^report\.convergence: "),
        ("report.formats=[pdf]", r"^report\.formats\[0\]: expected one of 'html'"),
    ],
)
def test_bad_values_name_their_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_a_source_change_reports_every_missing_and_stray_key():
    with pytest.raises(ConfigError) as caught:
        load_config(overrides=["data.source=csv"])
    problems = caught.value.problems
    assert "data.path: required key is missing" in problems
    assert "data.target: required key is missing" in problems
    assert any(line.startswith("data.name: unknown key") for line in problems)
    assert str(caught.value) == "; ".join(problems)


def test_nested_data_sections_are_checked():
    with pytest.raises(ConfigError, match=r"^ood\.dataset\.foo: unknown key"):
        load_config(overrides=["ood.dataset={source: sklearn, name: iris, foo: 1}"])


def test_model_needs_exactly_one_source():
    with pytest.raises(ConfigError, match=r"^model: expected exactly one of"):
        load_config(overrides=["model.architecture=null"])


def test_parquet_source_needs_pyarrow(tmp_path, monkeypatch):
    table = tmp_path / "t.parquet"
    table.write_bytes(b"")
    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "pyarrow" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    raw = {
        "model": {"architecture": "mlp"},
        "data": {"source": "parquet", "path": str(table), "target": "y"},
    }
    with pytest.raises(ConfigError, match=r"mcdropout\[parquet\]"):
        validate_config(raw)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mc: [1,\n", r"invalid YAML at line"),
        ("mc: {n_passes: 3}\nmc: {n_passes: 4}\n", r"^mc: key given twice"),
        ("- 1\n- 2\n", r"expected a mapping of sections, got list"),
    ],
)
def test_read_yaml_refuses_bad_documents(text, message):
    with pytest.raises(ConfigError, match=message):
        read_yaml(text)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match=r"^--config: file not found: .*nope\.yaml$"):
        load_config(tmp_path / "nope.yaml")


def test_empty_file_lacks_required_sections(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == [
        "model: required key is missing",
        "data: required key is missing",
    ]
