"""Config loading: _BASE_ merging, -o overrides, validation, number normalisation, PaddleClas key coverage."""
import ast
import copy

import pytest
import yaml

from ppcls_lite import config as cfgmod
from ppcls_lite.config import ConfigError, get_config, parse_args, print_config, save_config
from ppcls_lite.utils.config_rules import looks_like_number


def write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


MINIMAL = {
    "Global": {"epochs": 2, "device": "cpu", "output_dir": "./output/"},
    "Arch": {"name": "MobileNetV1_x0_25", "class_num": 3},
    "Optimizer": {"name": "Momentum", "momentum": 0.9,
                  "lr": {"name": "Cosine", "learning_rate": 0.1, "eta_min": "1e-5"},
                  "regularizer": {"name": "L2", "coeff": "1e-4"}},
    "DataLoader": {"Train": {
        "dataset": {"name": "ImageNetDataset", "image_root": "./d/", "cls_label_path": "./d/train.txt",
                    "transform_ops": [{"DecodeImage": {"to_rgb": True}}, {"RandCropImage": {"size": 224}},
                                      {"NormalizeImage": {"scale": "1.0/255.0", "order": ""}},
                                      {"ToCHWImage": None}]},
        "sampler": {"name": "DistributedBatchSampler", "batch_size": 8, "shuffle": True},
        "loader": {"num_workers": 0}}},
    "Loss": {"Train": [{"CELoss": {"weight": 1.0, "epsilon": "0.1"}}]},
    "Metric": {"Eval": [{"TopkAcc": {"topk": [1, 5]}}]},
}


@pytest.fixture
def minimal(tmp_path):
    return write(tmp_path / "minimal.yaml", MINIMAL)


# ----------------------------------------------------------------------------------------------- _BASE_

def test_base_single_list_and_chain_child_wins(tmp_path):
    write(tmp_path / "bases" / "root.yaml", {"Global": {"epochs": 1, "seed": 1, "output_dir": "root"},
                                             "Arch": {"name": "MobileNetV1", "class_num": 10}})
    write(tmp_path / "bases" / "mid.yaml", {"_BASE_": "root.yaml", "Global": {"epochs": 5},
                                            "Metric": {"Eval": [{"TopkAcc": {"topk": [1]}}]}})
    write(tmp_path / "bases" / "other.yaml", {"Global": {"seed": 7}})
    child = write(tmp_path / "exp" / "child.yaml",
                  {"_BASE_": ["../bases/mid.yaml", "../bases/other.yaml"], "Arch": {"class_num": 3}})
    config = get_config(child)
    assert config["Global"] == {"epochs": 5, "seed": 7, "output_dir": "root"}  # chain + later base wins
    assert config["Arch"] == {"name": "MobileNetV1", "class_num": 3}                    # child wins, dicts merge
    assert config["Metric"]["Eval"] == [{"TopkAcc": {"topk": [1]}}]
    assert "_BASE_" not in config


def test_base_replaces_lists_wholesale(tmp_path):
    write(tmp_path / "base.yaml", {"Metric": {"Eval": [{"TopkAcc": {"topk": [1, 5]}}]}})
    child = write(tmp_path / "c.yaml", {"_BASE_": "base.yaml", "Metric": {"Eval": [{"TopkAcc": {"topk": [2]}}]}})
    assert get_config(child)["Metric"]["Eval"] == [{"TopkAcc": {"topk": [2]}}]


def test_base_cycle_and_missing_files_are_named(tmp_path):
    write(tmp_path / "a.yaml", {"_BASE_": "b.yaml"})
    write(tmp_path / "b.yaml", {"_BASE_": "a.yaml"})
    with pytest.raises(ConfigError, match="cycle"):
        get_config(tmp_path / "a.yaml")
    write(tmp_path / "c.yaml", {"_BASE_": "nope.yaml"})
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        get_config(tmp_path / "c.yaml")
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        get_config(tmp_path / "missing.yaml")


def test_invalid_yaml_names_the_file(tmp_path):
    bad = write(tmp_path / "bad.yaml", "Global: {epochs: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        get_config(bad)


# ----------------------------------------------------------------------------------------------- -o

def test_overrides_typed_values_and_list_index(minimal):
    config = get_config(minimal, [
        "Global.epochs=3",
        "Optimizer.lr.learning_rate=0.01",
        "Metric.Eval.0.TopkAcc.topk=[1, 2]",
        "Global.use_visualdl=True",
        "Global.pretrained_model=null",
        "DataLoader.Train.dataset.transform_ops.1.RandCropImage.size=96",
        "Global.output_dir=./out dir/",
    ])
    assert config["Global"]["epochs"] == 3 and isinstance(config["Global"]["epochs"], int)
    assert config["Optimizer"]["lr"]["learning_rate"] == 0.01
    assert config["Metric"]["Eval"][0]["TopkAcc"]["topk"] == [1, 2]
    assert config["Global"]["use_visualdl"] is True
    assert config["Global"]["pretrained_model"] is None
    assert config["DataLoader"]["Train"]["dataset"]["transform_ops"][1] == {"RandCropImage": {"size": 96}}
    assert config["Global"]["output_dir"] == "./out dir/"


def test_override_repeated_key_last_wins(minimal):
    assert get_config(minimal, ["Global.epochs=3", "Global.epochs=4"])["Global"]["epochs"] == 4


def test_override_adds_known_and_free_form_keys(minimal):
    config = get_config(minimal, [
        "Global.seed=7",                        # known Global key not in the file
        "Optimizer.lr.warmup_epoch=1",          # known lr key
        "Optimizer.grad_clip.clip_norm=5",      # known sub-section created
        "EMA.decay=0.999",                      # known section created
        "Arch.freeze_befor=blocks[2]",          # free-form model kwargs
        "DataLoader.Train.sampler.drop_last=True",  # free-form sampler params
        "DataLoader.Train.dataset.transform_ops.3.ToCHWImage.x=1",  # an op written without params
    ])
    assert config["Global"]["seed"] == 7
    assert config["Optimizer"]["lr"]["warmup_epoch"] == 1
    assert config["Optimizer"]["grad_clip"] == {"clip_norm": 5}
    assert config["EMA"] == {"decay": 0.999}
    assert config["Arch"]["freeze_befor"] == "blocks[2]"
    assert config["DataLoader"]["Train"]["sampler"]["drop_last"] is True
    assert config["DataLoader"]["Train"]["dataset"]["transform_ops"][3] == {"ToCHWImage": {"x": 1}}


@pytest.mark.parametrize("override, expected", [
    ("Global.epoch=3", r"unknown key 'epoch' in Global\..*epochs.*Did you mean 'epochs'"),
    ("Globl.epochs=3", r"unknown section 'Globl'.*Did you mean 'Global'"),
    ("Optimizer.lr.eta_mn=0", r"unknown key 'eta_mn' in Optimizer\.lr.*Did you mean 'eta_min'"),
    ("Optimizer.momentun=0.8", r"Did you mean 'momentum'"),
    ("DataLoader.Train.datset.name=X", r"unknown key 'datset' in DataLoader\.Train.*dataset, sampler, loader"),
    ("DataLoader.Train.dataset.transform_ops.9.RandCropImage.size=1",
     r"not a valid index.*0 \(DecodeImage\), 1 \(RandCropImage\)"),
    ("DataLoader.Train.dataset.transform_ops.x.size=1", r"not a valid index"),
    ("DataLoader.Train.dataset.transform_ops.1.RandCropImag.size=1", r"has no key 'RandCropImag'.*RandCropImage"),
    ("Arch.backbone.depth=3", r"'Arch' has no key 'backbone'"),
    ("Global.epochs.value=3", r"'Global.epochs' is a value"),
    ("Global.pretrained_model.x=3", r"'Global.pretrained_model' is a value"),
    ("Global.epochs", r"must look like"),
    # a mapping written at a closed level is checked below it
    ("Optimizer.lr={name: Cosine, learnin_rate: 0.1}", r"override 'Optimizer.lr=.*unknown key 'learnin_rate' in "
                                                       r"Optimizer\.lr.*Did you mean 'learning_rate'"),
    ("AMP={use_amp: True, scale_los: 128}", r"unknown key 'scale_los' in AMP.*Did you mean 'scale_loss'"),
    ("Global.epochs=[1,", r"not valid YAML"),
])
def test_bad_overrides_are_explained(minimal, override, expected):
    with pytest.raises(ConfigError, match=expected):
        get_config(minimal, [override])


def test_override_does_not_touch_the_file(minimal):
    before = minimal.read_text()
    get_config(minimal, ["Global.epochs=9"])
    assert minimal.read_text() == before


# ----------------------------------------------------------------------------------------------- validation

def test_unknown_section_and_global_key_in_file(tmp_path):
    bad = write(tmp_path / "bad.yaml", {**MINIMAL, "Trainer": {"x": 1}})
    with pytest.raises(ConfigError, match=r"bad.yaml.*unknown section 'Trainer'.*Valid sections: Global"):
        get_config(bad)
    bad = write(tmp_path / "bad2.yaml", {**MINIMAL, "Global": {"epochz": 1}})
    with pytest.raises(ConfigError, match=r"unknown key 'epochz' in Global.*Did you mean 'epochs'"):
        get_config(bad)


def test_malformed_lists_and_arch_without_name(tmp_path):
    bad = write(tmp_path / "a.yaml", {**MINIMAL, "Loss": {"Train": {"CELoss": {}}}})
    with pytest.raises(ConfigError, match="Loss.Train"):
        get_config(bad)
    bad = write(tmp_path / "b.yaml", {**MINIMAL, "Arch": {"class_num": 3}})
    with pytest.raises(ConfigError, match="Arch.*name"):
        get_config(bad)
    bad = write(tmp_path / "c.yaml", {**MINIMAL, "Metric": {"Eval": [{"TopkAcc": {}, "Other": {}}]}})
    with pytest.raises(ConfigError, match=r"Metric.Eval.0"):
        get_config(bad)


@pytest.mark.parametrize("override", ["Global.epochs=3.5", "Global.epochs=0", "Global.print_batch_step=ten",
                                      "Global.seed=1.5", "Global.eval_interval=True"])
def test_global_counts_must_be_whole_numbers(minimal, override):
    with pytest.raises(ConfigError, match=r"Global\.\w+ must be"):
        get_config(minimal, [override])


def test_numbers_as_strings_are_converted_where_numbers_are_expected(minimal):
    config = get_config(minimal, ["Optimizer.lr.warmup_start_lr=1e-4"])
    assert config["Optimizer"]["lr"]["eta_min"] == 1e-5 and isinstance(config["Optimizer"]["lr"]["eta_min"], float)
    assert config["Optimizer"]["lr"]["warmup_start_lr"] == 1e-4
    assert config["Optimizer"]["regularizer"]["coeff"] == 1e-4
    assert config["Loss"]["Train"][0]["CELoss"]["epsilon"] == 0.1
    # the data op parses its own expression; names stay strings
    assert config["DataLoader"]["Train"]["dataset"]["transform_ops"][2]["NormalizeImage"]["scale"] == "1.0/255.0"
    assert config["Optimizer"]["regularizer"]["name"] == "L2"


def test_ignored_key_warns_once(minimal, logged_warnings):
    messages = logged_warnings
    get_config(minimal, ["Global.use_dali=True"])
    assert len(messages) == 1 and "use_dali" in messages[0] and "no effect" in messages[0]


def test_older_paddleclas_global_keys_keep_their_meaning(tmp_path, minimal, logged_warnings):
    messages = logged_warnings
    arch_without_class_num = {**MINIMAL, "Arch": {"name": "MobileNetV1_x0_25"}, "Global": {**MINIMAL["Global"],
                                                                                          "class_num": 102}}
    config = get_config(write(tmp_path / "a.yaml", arch_without_class_num))
    assert config["Arch"]["class_num"] == 102  # PaddleClas: Global.class_num fills a missing Arch.class_num
    assert len(messages) == 1 and "Arch.class_num set to 102" in messages[0]
    messages.clear()
    assert get_config(minimal, ["Global.class_num=5"])["Arch"]["class_num"] == 3  # Arch wins
    assert len(messages) == 1 and "Global.class_num (5) is ignored" in messages[0]

    messages.clear()
    config = get_config(minimal, ["Global.ema={enable: True, decay: 0.999}"])
    assert config["EMA"] == {"decay": 0.999} and "EMA.decay set to 0.999" in messages[0]
    assert "EMA" not in get_config(minimal, ["Global.ema={enable: False, decay: 0.999}"])

    messages.clear()
    config = get_config(minimal, ["Global.distributed=True", "Global.eval_mode=classification",
                                  "Global.start_eval_epoch=3", "Global.use_multilabel=True"])
    assert len(messages) == 1 and "Global.distributed has no effect here" in messages[0]
    assert config["Global"]["start_eval_epoch"] == 3  # both have their PaddleClas meaning (tests/test_pulc_*.py)
    with pytest.raises(ConfigError, match=r"Global.eval_mode.*classification, retrieval.*'reid'"):
        get_config(minimal, ["Global.eval_mode=reid"])
    with pytest.raises(ConfigError, match=r"Global.eval_mode.*retrieval.*Arch.name.*'MobileNetV1_x0_25'"):
        get_config(minimal, ["Global.eval_mode=retrieval"])  # retrieval compares a RecModel's features


def _tsv_config(tsv_path):
    """Build a config holding every key path of paddleclas_config_keys.tsv with the first listed value."""
    config = {}
    expected = []
    for line in tsv_path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, raw = line.split("\t")
        text = raw.split(" | ")[0]
        value = None if text == "(no arguments)" else ast.literal_eval(text)
        parts = key.split(".")
        node = config
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part.startswith("["):  # an op of a list: find it (or append it) by name
                op = part[1:-1]
                item = next((it for it in node if op in it), None)
                if item is None:
                    item = {op: None}
                    node.append(item)
                if last:
                    break
                if item[op] is None:
                    item[op] = {}
                node = item[op]
            elif last:
                node[part] = value
            else:
                nxt = parts[i + 1]
                node = node.setdefault(part, [] if nxt.startswith("[") else {})
        expected.append((parts, value))
    return config, expected


def _lookup(config, parts):
    node = config
    for part in parts:
        if part.startswith("["):
            node = next(it for it in node if part[1:-1] in it)[part[1:-1]]
        else:
            node = node[part]
    return node


def test_every_paddleclas_key_is_accepted(reference_dir, tmp_path, logged_warnings):
    raw, expected = _tsv_config(reference_dir / "paddleclas_config_keys.tsv")
    assert len(expected) > 90
    path = write(tmp_path / "all_keys.yaml", raw)
    config = get_config(path)
    for parts, value in expected:
        got = _lookup(config, parts)
        if isinstance(value, str) and parts[0] == "Optimizer" and looks_like_number(value):
            assert got == float(value), parts  # '1e-5' arrives as a string and is normalised
        else:
            assert got == value, parts


# ----------------------------------------------------------------------------------------------- output, CLI

def test_save_and_print_round_trip(minimal, tmp_path, monkeypatch):
    from ppcls_lite.utils import logger

    config = get_config(minimal)
    out = tmp_path / "run" / "config.yaml"
    save_config(config, out)
    assert get_config(out) == config
    lines = []
    monkeypatch.setattr(logger, "info", lambda msg, *args: lines.append(msg))
    print_config(config)
    text = "\n".join(lines)
    assert "Global:" in text and "  epochs: 2" in text and "learning_rate: 0.1" in text


def test_sections_come_out_in_canonical_order(tmp_path):
    path = write(tmp_path / "c.yaml", {"Metric": {"Eval": []}, "Arch": {"name": "MobileNetV1"}, "Global": {"epochs": 1}})
    assert list(get_config(path)) == ["Global", "Arch", "Metric"]


def test_parse_args_repeated_overrides_and_tool_flags():
    def extra(parser):
        parser.add_argument("--resume", default=None)

    args = parse_args("train", extra, ["-c", "x.yaml", "-o", "Global.epochs=1", "-o", "Global.seed=2",
                                       "--resume", "auto"])
    assert args.config == "x.yaml" and args.override == ["Global.epochs=1", "Global.seed=2"]
    assert args.resume == "auto"
    assert parse_args(argv=["--config", "y.yaml"]).override == []
    with pytest.raises(SystemExit):
        parse_args(argv=["-o", "Global.epochs=1"])  # -c is required


def test_merge_does_not_mutate_inputs():
    base = {"A": {"x": [1], "y": 1}}
    child = {"A": {"y": 2}}
    snapshot = copy.deepcopy(base)
    merged = cfgmod.merge_config(base, child)
    merged["A"]["x"].append(2)
    assert base == snapshot and merged["A"]["y"] == 2


def test_config_warnings_print_on_rank_0_only(minimal, monkeypatch, logged_warnings):
    lines = logged_warnings
    monkeypatch.setenv("PADDLE_TRAINER_ID", "1")
    get_config(minimal, ["Global.use_dali=True"])
    assert lines == []  # every rank loads the same config: rank 0 alone says it
    monkeypatch.setenv("PADDLE_TRAINER_ID", "0")
    get_config(minimal, ["Global.use_dali=True"])
    assert len(lines) == 1 and "use_dali has no effect" in lines[0]


def test_optimizer_keys_come_from_the_registered_builders():
    """The closed Optimizer keys are the union of what the registered optimizers and schedules take."""
    from ppcls_lite.optimizer import OPTIMIZERS, SCHEDULES
    optimizer_schema = cfgmod.build_schema()["Optimizer"]
    assert {"momentum", "beta1", "centered", "lr", "regularizer"} <= set(optimizer_schema)
    for name in SCHEDULES:  # every schedule's own keyword is a valid Optimizer.lr key
        keys = SCHEDULES.accepted(name, injected=["run"])
        assert set(keys) <= set(optimizer_schema["lr"]), name
    assert "Momentum" in OPTIMIZERS and "eta_min" in optimizer_schema["lr"]
