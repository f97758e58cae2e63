"""Retrieval parts without training: RecModel and its necks/heads against PaddleClas, the metric-learning losses,
the retrieval metrics (against PaddleClas and their definitions), the ranking (exclusions, memory), the identity
sampler, VeriWild lists, the config checks, the embedding post-process and the search index."""
import json
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
import paddle
import pytest

from helpers import (FIXTURE_REFERENCE_DIR, REPO_ROOT, parity_rule, read_state_dict_txt, state_dict_entries,
                      write_config)
from ppcls_lite.arch import GEARS, build_model
from ppcls_lite.config import ConfigError, get_config
from ppcls_lite.data import build_dataloader
from ppcls_lite.data.dataset import VeriWild
from ppcls_lite.data.identity_sampler import RandomIdentityBatchSampler
from ppcls_lite.engine.retrieval import FeatureSet, own_images, rank_block
from ppcls_lite.loss import build_loss
from ppcls_lite.metric import build_metrics
from ppcls_lite.pipeline import Embedding, finish_features, format_row
from ppcls_lite.predict.search import GalleryIndex, SearchIndexError, gallery_entries, resolve_engine

REFERENCE = FIXTURE_REFERENCE_DIR
PARITY_ARCHS = json.loads((REFERENCE / "retrieval_archs.json").read_text())


def with_parity_weights(layer):
    weights = parity_rule().parity_weights({k: v.shape for k, v in layer.state_dict().items()})
    layer.set_state_dict({k: paddle.to_tensor(v) for k, v in weights.items()})
    return layer


# ------------------------------------------------------------------------------------------------ the model
@pytest.mark.parametrize("name", sorted(PARITY_ARCHS))
def test_recmodel_state_dict_is_paddleclas(name):
    model = build_model({"name": "RecModel", **PARITY_ARCHS[name]})
    assert state_dict_entries(model) == read_state_dict_txt(REFERENCE / "state_dict" / f"{name}.txt")


def test_recmodel_outputs_and_margin_heads_match_paddleclas():
    ref = np.load(REFERENCE / "parity" / "RecModel_MobileNetV1_retrieval.npz")
    model = with_parity_weights(build_model({"name": "RecModel", **PARITY_ARCHS["RecModel_MobileNetV1_retrieval"]}))
    model.eval()
    out = model(paddle.to_tensor(ref["x"]))
    assert sorted(out) == ["backbone", "features", "logits", "neck"]
    for key in ("backbone", "features", "logits"):
        np.testing.assert_allclose(out[key].numpy(), ref[key], atol=1e-5)
    for head, params in {"ArcMargin": {"margin": 0.15, "scale": 30.0}, "CosMargin": {"margin": 0.35, "scale": 64.0},
                         "CircleMargin": {"margin": 0.25, "scale": 32.0}}.items():
        layer = with_parity_weights(GEARS.build(head, dict(embedding_size=16, class_num=7, **params)))
        layer.train()
        logits = layer(paddle.to_tensor(ref["head_in"]), paddle.to_tensor(ref["head_label"]))
        np.testing.assert_allclose(logits.numpy(), ref[f"{head}/train"], atol=1e-4, err_msg=head)
        layer.eval()  # eval / no labels: the plain cosine, whatever the margin
        cosine = layer(paddle.to_tensor(ref["head_in"]), paddle.to_tensor(ref["head_label"])).numpy()
        assert np.abs(cosine).max() <= 1.0 + 1e-6 and not np.allclose(cosine * params["scale"], logits.numpy())


def test_recmodel_keys_and_errors():
    arch = {"name": "RecModel", "Backbone": {"name": "MobileNetV1_x0_25"}, "BackboneStopLayer": {"name": "flatten"}}
    model = build_model(arch)  # no neck, no head: the backbone's flattened output is the embedding
    out = model(paddle.randn([2, 3, 32, 32]))
    assert sorted(out) == ["backbone", "features"] and out["features"].shape == [2, 256]
    assert model.outputs_features and model.class_num is None
    with pytest.raises(ValueError, match="unknown neck/head 'FCC' in Arch.Neck.name.*Did you mean 'FC'"):
        build_model(dict(arch, Neck={"name": "FCC", "embedding_size": 256, "class_num": 8}))
    with pytest.raises(ValueError, match="MobileNetV1Model has no layer named 'flaten'"):
        build_model(dict(arch, BackboneStopLayer={"name": "flaten"}))
    with pytest.raises(ValueError, match="Arch.infer_output_key must be one of"):
        build_model(dict(arch, infer_output_key="neck"))


# ------------------------------------------------------------------------------------------------ losses
def test_metric_learning_losses_match_paddleclas():
    ref = np.load(REFERENCE / "losses" / "retrieval_losses.npz")
    features, labels = paddle.to_tensor(ref["features"]), paddle.to_tensor(ref["labels"])
    for i, (name, params) in enumerate(json.loads(str(ref["cases"]))):
        value = float(build_loss([{name: params}])({"features": features}, labels)[name])
        assert value == pytest.approx(float(ref[str(i)]), rel=1e-5), (name, params)


def test_triplet_loss_trains_the_embedding_and_names_what_it_reads():
    paddle.seed(0)
    features = paddle.create_parameter([8, 4], "float32")
    labels = paddle.to_tensor([0, 0, 1, 1, 2, 2, 3, 3])
    loss_fn = build_loss([{"TripletLossV2": {"margin": 0.5}}])
    optimizer = paddle.optimizer.SGD(0.5, parameters=[features])
    first = None
    for _ in range(60):
        loss = loss_fn({"features": features}, labels)["loss"]
        first = float(loss) if first is None else first
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
    assert float(loss) < 0.05 < first  # identities pulled together, pushed apart by the margin
    with pytest.raises(ValueError, match="TripletLossV2 reads the model output 'features'.*RecModel"):
        loss_fn(paddle.randn([8, 4]), labels)


# ------------------------------------------------------------------------------------------------ metrics
def ranked_from_similarity(similarity, query_labels, gallery_labels):
    order = np.argsort(-similarity, axis=1, kind="stable")
    return np.take_along_axis(query_labels.reshape(-1, 1) == gallery_labels.reshape(1, -1), order, axis=1)


def retrieval_metrics(topk=(1, 5, 10)):
    return build_metrics([{"Recallk": {"topk": list(topk)}}, {"mAP": {}}, {"mINP": {}},
                          {"Precisionk": {"topk": [1, 3]}}])


def test_recall_and_map_match_paddleclas():
    ref = np.load(REFERENCE / "metrics" / "retrieval_metrics.npz")
    metrics = retrieval_metrics()
    metrics.update_ranked(ranked_from_similarity(ref["similarity"], ref["query_labels"], ref["gallery_labels"]))
    result = metrics.accumulate()
    for key in ("recall1", "recall5", "recall10", "mAP"):
        assert result[key] == pytest.approx(float(ref[key]), abs=1e-6), key


def by_definition(ranked):
    """Recall@k, AP, INP (1-based hardest rank) and P@k query by query, written out plainly."""
    recall, ap, inp = {1: [], 5: [], 10: []}, [], []
    precision = {1: [], 3: []}
    for row in ranked:
        for k in precision:
            precision[k].append(row[:k].sum() / k)
        hits = np.flatnonzero(row) + 1  # 1-based ranks of the matches
        if not len(hits):
            continue
        for k in recall:
            recall[k].append(hits[0] <= k)
        ap.append(np.mean([(i + 1) / rank for i, rank in enumerate(hits)]))
        inp.append(len(hits) / hits[-1])
    return {**{f"recall{k}": np.mean(v) for k, v in recall.items()}, "mAP": np.mean(ap), "mINP": np.mean(inp),
            **{f"precision@{k}": np.mean(v) for k, v in precision.items()}}


def test_metrics_follow_their_definitions_whatever_the_blocks():
    rng = np.random.default_rng(1)
    ranked = rng.random((37, 50)) < 0.08
    ranked[3] = False  # queries without a match
    ranked[17] = False
    expected = by_definition(ranked)
    for block in (1, 5, 37):
        metrics = retrieval_metrics()
        for start in range(0, len(ranked), block):
            metrics.update_ranked(ranked[start:start + block])
        result = metrics.accumulate()
        assert result == pytest.approx(expected, abs=1e-12)
    halves = [retrieval_metrics(), retrieval_metrics()]  # two ranks: their states add up to the whole
    halves[0].update_ranked(ranked[:20])
    halves[1].update_ranked(ranked[20:])
    summed = {k: halves[0].state()[k] + halves[1].state()[k] for k in halves[0].state()}
    assert halves[0].result_from_state(summed) == pytest.approx(expected, abs=1e-12)
    assert retrieval_metrics().primary == ("recall1", True)
    with pytest.raises(ValueError, match="Recallk is a retrieval metric: it needs Global.eval_mode: retrieval"):
        retrieval_metrics().update(paddle.randn([2, 3]), paddle.to_tensor([0, 1]))


def feature_set(features, labels, files, cameras=None, present=None):
    features = np.asarray(features, np.float32)
    return FeatureSet(features, np.ones(len(features), bool) if present is None else np.asarray(present),
                      np.asarray(labels, np.int64), None if cameras is None else np.asarray(cameras, np.int64),
                      list(files))


def test_ranking_excludes_the_query_image_same_camera_matches_and_missing_images():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((6, 4)).astype(np.float32)
    gallery = feature_set(feats, [0, 0, 1, 1, 0, 2], [f"/g/{i}.jpg" for i in range(6)], cameras=[1, 2, 1, 2, 1, 1],
                          present=[True, True, True, True, True, False])
    # query 0 is gallery image 0 itself; query 1 is a new image of identity 0 seen by camera 1
    query = feature_set(feats[[0, 4]] + [[0, 0, 0, 0], [0.01, 0, 0, 0]], [0, 0], ["/g/0.jpg", "/q/new.jpg"],
                        cameras=[1, 1])
    ranked = rank_block(query, gallery, np.array([0, 1]), own_images(query, gallery))
    similarity = query.features @ gallery.features.T
    for row, sims in zip(ranked, similarity):
        # gallery 0 (own file / identity 0 under camera 1), 4 (identity 0, camera 1) and 5 (not embedded) are out;
        # the one match left is gallery 1 (identity 0, camera 2), at its place among the others
        kept = [j for j in np.argsort(-sims, kind="stable") if j not in (0, 4, 5)]
        np.testing.assert_array_equal(row, np.arange(6) == kept.index(1))
    same = feature_set(feats, [0, 0, 1, 1, 0, 2], [f"/g/{i}.jpg" for i in range(6)])  # one set: query = gallery
    ranked = rank_block(same, same, np.arange(6), own_images(same, same))
    assert not ranked[:, -1].any()  # each query's own image is ranked last and is no match
    assert ranked[0].sum() == 2 and ranked[5].sum() == 0


def test_ranking_memory_is_one_block_times_the_gallery():
    rng = np.random.default_rng(0)
    n_query, n_gallery, block = 1024, 20000, 32
    gallery = feature_set(rng.standard_normal((n_gallery, 16)), rng.integers(0, 50, n_gallery),
                          [f"/g/{i}" for i in range(n_gallery)])
    query = feature_set(rng.standard_normal((n_query, 16)), rng.integers(0, 50, n_query),
                        [f"/q/{i}" for i in range(n_query)])
    metrics = retrieval_metrics()
    own = own_images(query, gallery)
    tracemalloc.start()
    for start in range(0, n_query, block):
        metrics.update_ranked(rank_block(query, gallery, np.arange(start, start + block), own))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    full_matrix = n_query * n_gallery * 4  # what a query x gallery float32 similarity alone would take
    per_block = 40 * block * n_gallery  # a few block x gallery arrays (similarity, order, masks, sums)
    assert peak < per_block < full_matrix / 3, f"peak {peak / 1e6:.0f} MB, full matrix {full_matrix / 1e6:.0f} MB"
    assert metrics.accumulate()["recall1"] == pytest.approx(1 / 50, abs=0.02)  # random features: chance level


# ------------------------------------------------------------------------------------------------ data
def write_list(root, name, lines):
    path = Path(root) / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


@pytest.fixture
def pngs(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d 7.png", "e.png", "f.png"):
        cv2.imwrite(str(tmp_path / name), np.full((8, 8, 3), 40, np.uint8))
    return tmp_path


def test_veriwild_reads_identities_cameras_and_names_ending_in_numbers(pngs):
    lst = write_list(pngs, "with_cameras.txt", ["a.png 5 1", "b.png 5 2", "d 7.png 9 1", "c.png 8 3"])
    dataset = VeriWild(str(pngs), str(lst))
    assert [label for _, label in dataset.samples] == [5, 5, 9, 8] and dataset.cameras == [1, 2, 1, 3]
    assert dataset.samples[2][0].endswith("d 7.png")
    plain = VeriWild(str(pngs), str(write_list(pngs, "plain.txt", ["a.png 5", "d 7.png 9"])), relabel=True)
    assert plain.cameras is None and [label for _, label in plain.samples] == [0, 1]
    with pytest.raises(ValueError, match=r"mixed.txt:2: some lines .* have a camera column and some do not"):
        VeriWild(str(pngs), str(write_list(pngs, "mixed.txt", ["a.png 5 1", "b.png 5"])))
    skipping = VeriWild(str(pngs), str(write_list(pngs, "gone.txt", ["a.png 5 1", "gone.png 6 4", "c.png 8 3"])),
                        skip_bad_images=True)
    assert skipping.cameras == [1, 3] and len(skipping.samples) == 2


def test_identity_sampler_makes_pk_batches_per_epoch_seed_and_rank(pngs):
    lines = [f"{name} {label}" for name, label in
             zip(["a.png", "b.png", "c.png", "e.png", "f.png", "d 7.png"] * 4, [0, 0, 1, 1, 2, 3] * 4)]
    dataset = VeriWild(str(pngs), str(write_list(pngs, "train.txt", lines)))
    labels = np.array([label for _, label in dataset.samples])
    sampler = RandomIdentityBatchSampler(dataset, batch_size=4, num_instances=2)
    for seed in (1, 2):
        sampler.set_epoch(seed)
        batches = list(sampler)
        assert len(batches) == len(sampler) == 12 // 2  # chunks of 2 per identity / 2 identities per batch
        for batch in batches:  # 2 identities x 2 images each
            ids, counts = np.unique(labels[batch], return_counts=True)
            assert len(batch) == 4 and len(ids) == 2 and set(counts) == {2}
    sampler.set_epoch(1)
    assert list(sampler) == list(sampler) != (sampler.set_epoch(2) or list(sampler))
    ranks = [RandomIdentityBatchSampler(dataset, 4, 2, nranks=2, rank=r) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(5)
    assert len(ranks[0]) == len(ranks[1]) == 3
    sampler.set_epoch(5)
    assert sorted(map(tuple, list(ranks[0]) + list(ranks[1]))) == sorted(map(tuple, sampler))  # a split, no overlap
    with pytest.raises(ValueError, match="batch_size \\(6\\) must be a multiple of num_instances \\(4\\)"):
        RandomIdentityBatchSampler(dataset, 6, 4)
    with pytest.raises(ValueError, match="5 different identities but the list has only 4"):
        RandomIdentityBatchSampler(dataset, 10, 2)


# ------------------------------------------------------------------------------------------------ config
def retrieval_config(root, **changes):
    ops = [{"DecodeImage": {"to_rgb": True}}, {"NormalizeImage": {"scale": "1.0/255.0", "order": ""}}]
    dataset = {"name": "VeriWild", "image_root": str(root), "cls_label_path": str(Path(root) / "plain.txt"),
               "transform_ops": ops}
    config = {"Global": {"eval_mode": "retrieval", "device": "cpu"},
              "Arch": {"name": "RecModel", "infer_output_key": "features", "Backbone": {"name": "MobileNetV1_x0_25"},
                       "BackboneStopLayer": {"name": "flatten"}},
              "Loss": {"Train": [{"TripletLossV2": {"margin": 0.5}}]},
              "Optimizer": {"name": "Momentum", "momentum": 0.9, "lr": {"name": "Constant", "learning_rate": 0.1}},
              "DataLoader": {"Train": {"dataset": dataset, "sampler": {"name": "DistributedRandomIdentitySampler",
                                                                      "batch_size": 4, "num_instances": 2}},
                             "Eval": {"Query": {"dataset": dataset}, "Gallery": {"dataset": dataset}}},
              "Metric": {"Eval": [{"Recallk": {"topk": [1, 5]}}, {"mAP": {}}]}}
    for path, value in changes.items():
        node = config
        *parents, key = path.split(".")
        for part in parents:
            node = node[part]
        node[key] = value
    return config


@pytest.mark.parametrize("changes, message", [
    ({"Arch": {"name": "MobileNetV1_x0_25"}}, "Global.eval_mode is retrieval but Arch.name is 'MobileNetV1_x0_25'"),
    ({"Metric.Eval": [{"TopkAcc": {"topk": [1]}}]}, "Metric.Eval lists TopkAcc but Global.eval_mode is retrieval"),
    ({"Global.eval_mode": "classification"}, "Metric.Eval lists the retrieval metric\\(s\\) Recallk, mAP: set "
                                             "Global.eval_mode: retrieval"),
    ({"Metric.Train": [{"mAP": {}}]}, "Metric.Train lists the retrieval metric\\(s\\) mAP"),
    ({"Global.eval_mode": "reid"}, "Global.eval_mode must be one of classification, retrieval, got 'reid'"),
    ({"Global.feature_binarize": "threshold"}, "Global.feature_binarize must be one of None, round, sign"),
    ({"Global.feature_normalize": "yes"}, "Global.feature_normalize must be True or False"),
    ({"Metric.Eval": [{"Recallk": {"topk": [0]}}]}, "Metric.Eval.0.Recallk.topk"),
    ({"DataLoader.Eval": {"Query": {"datset": {}}}}, "unknown key 'datset' in DataLoader.Eval.Query"),
    ({"DataLoader.Eval": {"Query": {"dataset": {"name": "VeriWid"}}}}, "unknown dataset 'VeriWid'.*VeriWild"),
    ({"Arch.Neck": {"name": "Bnneck", "num_features": 3}}, "unknown neck/head 'Bnneck' in Arch.Neck.name"),
])
def test_config_checks_name_the_retrieval_key(pngs, tmp_path, changes, message):
    write_list(pngs, "plain.txt", ["a.png 0", "b.png 0", "c.png 1", "e.png 1"])
    with pytest.raises(ConfigError, match=message):
        get_config(write_config(retrieval_config(pngs, **changes), tmp_path / "c.yaml"))


def test_query_gallery_loaders_yield_indices_and_need_each_other(pngs, tmp_path):
    from ppcls_lite.engine.retrieval import build_retrieval_data

    write_list(pngs, "plain.txt", ["a.png 0", "b.png 0", "c.png 1", "e.png 1", "f.png 2"])
    write_list(pngs, "gallery.txt", ["a.png 0", "c.png 1"])
    config = get_config(write_config(retrieval_config(pngs), tmp_path / "c.yaml"))
    assert [name for name, _ in build_retrieval_data(config["DataLoader"]).parts()] == ["query+gallery"]  # same list
    config["DataLoader"]["Eval"]["Gallery"]["dataset"] = dict(config["DataLoader"]["Eval"]["Gallery"]["dataset"],
                                                              cls_label_path=str(pngs / "gallery.txt"))
    data = build_retrieval_data(config["DataLoader"])
    assert [(name, len(loader.dataset)) for name, loader in data.parts()] == [("gallery", 2), ("query", 5)]
    data.query.set_epoch(1)
    assert [int(i) for _, ids in data.query for i in ids.numpy()] == [0, 1, 2, 3, 4]
    loader = build_dataloader(config["DataLoader"], "Eval", part="Gallery")  # labels as usual without index_labels
    assert [int(i) for _, labels in loader for i in labels.numpy()] == [0, 1]
    del config["DataLoader"]["Eval"]["Gallery"]
    with pytest.raises(KeyError, match="DataLoader.Eval has Query but no Gallery"):
        build_retrieval_data(config["DataLoader"])


# ------------------------------------------------------------------------------------------------ embeddings
def test_features_are_finished_as_paddleclas_does():
    raw = np.array([[3.0, -4.0, 0.0], [0.2, 0.6, -0.9], [0.0, 0.0, 0.0]], np.float32)
    normed = finish_features(raw)
    np.testing.assert_allclose(normed[0], [0.6, -0.8, 0.0], atol=1e-7)
    assert np.all(normed[2] == 0)  # an all-zero feature stays finite
    np.testing.assert_array_equal(finish_features(raw, False, "round")[1], [-1.0, 1.0, -3.0])  # round(x) * 2 - 1
    np.testing.assert_array_equal(finish_features(raw, False, "sign")[0], [1.0, -1.0, 0.0])
    results = Embedding(normalize=True)(raw[:2], ["a.jpg", "b.jpg"])
    assert [r["file_name"] for r in results] == ["a.jpg", "b.jpg"]
    assert results[0]["features"] == pytest.approx([0.6, -0.8, 0.0])
    assert format_row(results[0]) == {"file_name": "a.jpg", "features": " ".join(map(str, results[0]["features"]))}
    with pytest.raises(ValueError, match="binarize must be one of"):
        Embedding(binarize="median")


def test_gallery_entries_label_by_folder_or_list(tmp_path, pngs):
    for folder in ("cat", "dog/big"):
        (tmp_path / "g" / folder).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "g" / folder / "x.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "g" / "top.png"), np.zeros((4, 4, 3), np.uint8))
    entries = {Path(f).relative_to(tmp_path / "g").as_posix(): label for f, label in gallery_entries(tmp_path / "g")}
    assert entries == {"cat/x.png": "cat", "dog/big/x.png": "dog/big", "top.png": ""}
    listed = gallery_entries(write_list(pngs, "gallery.txt", ["a.png Coca-Cola", "d 7.png", "c.png 3"]))
    assert [(Path(f).name, label) for f, label in listed] == [("a.png", "Coca-Cola"), ("d 7.png", ""),
                                                            ("c.png", "3")]


def test_index_round_trip_and_exact_search(tmp_path):
    rng = np.random.default_rng(0)
    features = finish_features(rng.standard_normal((300, 24)))
    model = {"model_name": "RecModel", "weights_sha256": "abc", "normalize": True, "binarize": None}
    index = GalleryIndex(features, [f"g{i}.jpg" for i in range(300)], [str(i % 7) for i in range(300)], model)
    index.save(tmp_path / "gallery.npz")
    loaded = GalleryIndex.load(tmp_path / "gallery.npz")
    assert loaded.files == index.files and loaded.labels == index.labels and loaded.model == model
    np.testing.assert_array_equal(loaded.features, features)
    queries = features[[5, 250]] + 0.01 * rng.standard_normal((2, 24)).astype(np.float32)
    scores, positions = loaded.search(queries, topk=4, engine="numpy")
    brute = np.argsort(-(queries @ features.T), axis=1)[:, :4]
    np.testing.assert_array_equal(positions, brute)
    assert list(positions[:, 0]) == [5, 250] and np.all(np.diff(scores, axis=1) <= 0)
    if resolve_engine("auto") == "faiss":  # faiss-cpu installed (the `search` extra): the same exact answer
        faiss_scores, faiss_positions = loaded.search(queries, topk=4, engine="faiss")
        np.testing.assert_array_equal(faiss_positions, positions)
        np.testing.assert_allclose(faiss_scores, scores, atol=1e-5)
    with pytest.raises(SearchIndexError, match="query features have shape \\(2, 8\\), the index holds 24-d"):
        loaded.search(queries[:, :8])
    (tmp_path / "bad.npz").write_bytes(b"not an index")
    with pytest.raises(SearchIndexError, match="bad.npz cannot be read.*rebuild it with tools/search.py build"):
        GalleryIndex.load(tmp_path / "bad.npz")


# ------------------------------------------------------------------------------------------------ configs
@pytest.mark.parametrize("relative, sha256", [
    ("quick_start/MobileNetV1_retrieval.yaml", "9c32e87547aacfd4b6b391e4f19494be68f42010f97d325efe9c3d218b1d3e21"),
    ("Products/MV3_Large_1x_Aliproduct_DLBHC.yaml", "a66bdcc47b9bc52470c751f2cc686bcc8d1a6ed4d9e5417ec546edd5a3b6aee2"),
])
def test_paddleclas_retrieval_configs_ship_unchanged_and_load(relative, sha256):
    import hashlib

    text = (REPO_ROOT / "configs" / relative).read_bytes()
    marker = b"# ---- PaddleClas's file, unchanged, below this line ----\n"
    header, body = text.split(marker)
    assert b"Apache License 2.0" in header and sha256.encode() in header
    assert hashlib.sha256(body).hexdigest() == sha256
    config = get_config(REPO_ROOT / "configs" / relative)
    assert config["Arch"]["name"] == "RecModel"
    model = build_model(dict(config["Arch"], Backbone=dict(config["Arch"]["Backbone"], pretrained=False)))
    assert model.outputs_features  # infer_output_key: features


def test_quick_start_retrieval_config_builds():
    config = get_config(REPO_ROOT / "configs" / "quick_start" / "MobileNetV3_small_fashion_mnist_retrieval.yaml")
    assert config["Global"]["eval_mode"] == "retrieval"
    model = build_model(config["Arch"])
    model.eval()
    assert model(paddle.randn([1, 3, 56, 56]))["features"].shape == [1, 128]
