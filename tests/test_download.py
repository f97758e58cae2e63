"""Pretrained downloads against a loopback server serving generated weights at PaddleClas's URL paths."""
import hashlib
import io
import socket
import urllib.parse
from pathlib import Path

import numpy as np
import paddle
import pytest

from helpers import Route
from ppcls_lite.arch import build_model
from ppcls_lite.arch.pretrained import MODEL_URLS, SSLD_MODELS, pretrained_url
from ppcls_lite.utils import download as dl

NAME = "MobileNetV3_small_x0_35"
URL_PATH = urllib.parse.urlsplit(MODEL_URLS[NAME]).path  # PaddleClas's path on its host


@pytest.fixture(scope="module")
def imagenet_weights(tmp_path_factory):
    """Random 1000-class weights of NAME with the right keys and shapes, as paddle.save writes them."""
    paddle.seed(1)
    model = build_model({"name": NAME, "class_num": 1000})
    rng = np.random.default_rng(0)
    state = {k: rng.standard_normal(v.shape).astype("float32") for k, v in model.state_dict().items()}
    path = tmp_path_factory.mktemp("served") / "weights.pdparams"
    paddle.save(state, str(path))
    return state, path.read_bytes()


def _cached(name=NAME):
    return Path(dl.weights_dir()) / f"{name}_pretrained.pdparams"


def test_model_urls_cover_every_model_with_paddleclas_paths():
    from ppcls_lite.arch import list_models

    assert sorted(MODEL_URLS) == sorted(list_models())
    assert MODEL_URLS["MobileNetV3_large_x1_0"] == ("https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/"
                                                    "legendary_models/MobileNetV3_large_x1_0_pretrained.pdparams")
    assert pretrained_url("MobileNetV2", use_ssld=True).endswith("/dygraph/MobileNetV2_ssld_pretrained.pdparams")
    assert all(pretrained_url(n, use_ssld=True).endswith("_ssld_pretrained.pdparams") for n in SSLD_MODELS)
    with pytest.raises(ValueError, match="SSLD weights only"):
        pretrained_url("MobileNetV2_x0_5", use_ssld=True)
    with pytest.raises(ValueError, match="publishes no ImageNet weights for MobileNeXt_x0_5"):
        build_model({"name": "MobileNeXt_x0_5", "pretrained": True})


def test_mirror_replaces_scheme_and_host_keeping_the_path(monkeypatch):
    monkeypatch.setenv("PPCLS_LITE_WEIGHTS_MIRROR", "http://127.0.0.1:8080")
    assert dl.apply_mirror(MODEL_URLS[NAME]) == "http://127.0.0.1:8080" + URL_PATH
    monkeypatch.delenv("PPCLS_LITE_WEIGHTS_MIRROR")
    assert dl.apply_mirror(MODEL_URLS[NAME]) == MODEL_URLS[NAME]


def test_pretrained_true_downloads_checks_caches_and_reuses(mirror_server, imagenet_weights, capsys):
    state, body = imagenet_weights
    mirror_server.routes[URL_PATH] = Route(body)
    model = build_model({"name": NAME, "class_num": 10, "pretrained": True})
    loaded = model.state_dict()
    key = "blocks.3.mid_se.conv1.weight"
    np.testing.assert_array_equal(loaded[key].numpy(), state[key])
    assert list(loaded["fc.weight"].shape) == [1280, 10]  # the 1000-class fc was dropped
    assert mirror_server.requests == [(URL_PATH, None)]
    assert _cached().read_bytes() == body
    recorded = Path(str(_cached()) + ".sha256").read_text().split()[0]
    assert recorded == hashlib.sha256(body).hexdigest()
    assert not Path(str(_cached()) + ".part").exists()
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("downloading")]
    assert 1 <= len(progress) <= 10 and "100.0%" in progress[-1] and "MB/s" in progress[-1]

    build_model({"name": NAME, "class_num": 10, "pretrained": True})
    assert len(mirror_server.requests) == 1  # reused from the cache

    damaged = bytearray(body)
    damaged[-100] ^= 0xFF
    _cached().write_bytes(bytes(damaged))  # no longer the recorded hash: fetched again
    build_model({"name": NAME, "class_num": 10, "pretrained": "True"})
    assert len(mirror_server.requests) == 2 and _cached().read_bytes() == body


def test_use_ssld_requests_the_ssld_file(mirror_server, imagenet_weights):
    mirror_server.routes[URL_PATH.replace("_pretrained", "_ssld_pretrained")] = Route(imagenet_weights[1])
    build_model({"name": NAME, "class_num": 10, "pretrained": True, "use_ssld": True})
    assert mirror_server.requests == [(URL_PATH.replace("_pretrained", "_ssld_pretrained"), None)]


def test_dropped_connection_resumes_with_a_range_request(mirror_server, imagenet_weights):
    body = imagenet_weights[1]
    mirror_server.routes[URL_PATH] = Route(body, kind="drop_once")
    build_model({"name": NAME, "class_num": 1000, "pretrained": True})
    (first, _), (second, range_header) = mirror_server.requests
    assert first == second == URL_PATH and range_header == f"bytes={len(body) // 2}-"
    assert _cached().read_bytes() == body


def test_transient_server_error_is_retried(mirror_server, imagenet_weights):
    mirror_server.routes[URL_PATH] = Route(imagenet_weights[1], kind="fail_once")
    build_model({"name": NAME, "class_num": 10, "pretrained": True})
    assert len(mirror_server.requests) == 2 and _cached().read_bytes() == imagenet_weights[1]


@pytest.mark.parametrize("route,expected", [
    ("truncated", "truncated"),
    ("html", "HTML page"),
    ("other_model", "another model"),
])
def test_unusable_downloads_are_deleted_and_reported(mirror_server, imagenet_weights, route, expected):
    body = imagenet_weights[1]
    if route == "truncated":
        mirror_server.routes[URL_PATH] = Route(body[: len(body) // 3])  # a complete response of a cut file
    elif route == "html":
        mirror_server.routes[URL_PATH] = Route(b"<!DOCTYPE html><html><body>Please log in</body></html>",
                                        content_type="text/html")
    else:
        buffer = io.BytesIO()
        paddle.save(build_model({"name": "MobileNetV1_x0_25"}).state_dict(), buffer)
        mirror_server.routes[URL_PATH] = Route(buffer.getvalue())
    with pytest.raises(dl.DownloadError, match=expected) as info:
        build_model({"name": NAME, "class_num": 10, "pretrained": True})
    assert URL_PATH in str(info.value) and "deleted" in str(info.value)
    assert not _cached().exists() and not Path(str(_cached()) + ".part").exists()


def test_404_and_offline_errors_name_url_cache_and_the_manual_way(mirror_server, monkeypatch):
    with pytest.raises(dl.DownloadError) as info:
        build_model({"name": NAME, "pretrained": True})
    message = str(info.value)
    assert "HTTP 404" in message and mirror_server.url + URL_PATH in message and str(_cached()) in message
    assert "by hand" in message and len(mirror_server.requests) == 1  # a 404 is not retried

    with socket.socket() as probe:  # a port nobody listens on: what an offline mirror looks like
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("PPCLS_LITE_WEIGHTS_MIRROR", f"http://127.0.0.1:{port}")
    with pytest.raises(dl.DownloadError, match=rf"127\.0\.0\.1:{port}.*Cache path: .*{NAME}_pretrained") as info:
        build_model({"name": NAME, "pretrained": True})
    assert "copy it to" in str(info.value)


def test_a_file_placed_by_hand_is_checked_and_used_without_network(mirror_server, imagenet_weights):
    _cached().parent.mkdir(parents=True, exist_ok=True)
    _cached().write_bytes(imagenet_weights[1])
    build_model({"name": NAME, "class_num": 10, "pretrained": True})
    assert mirror_server.requests == []
    assert Path(str(_cached()) + ".sha256").read_text().split()[0] == hashlib.sha256(imagenet_weights[1]).hexdigest()


def test_pretrained_url_and_global_pretrained_model_url(mirror_server, imagenet_weights, monkeypatch):
    monkeypatch.delenv("PPCLS_LITE_WEIGHTS_MIRROR")
    mirror_server.routes["/models/my weights.pdparams"] = Route(imagenet_weights[1])
    url = mirror_server.url + "/models/my%20weights.pdparams"
    model = build_model({"name": NAME, "class_num": 1000, "pretrained": url})
    np.testing.assert_array_equal(model.state_dict()["fc.bias"].numpy(), imagenet_weights[0]["fc.bias"])
    assert (Path(dl.weights_dir()) / "my weights.pdparams").exists()

    from ppcls_lite.utils.save_load import load_pretrained

    report = load_pretrained(build_model({"name": NAME, "class_num": 1000}), url)  # Global.pretrained_model
    assert report["missing"] == [] and report["mismatched"] == [] and len(mirror_server.requests) == 1


def test_progress_on_a_terminal_shows_size_speed_and_eta():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    stream = Tty()
    bar = dl._Progress("x.pdparams", 4 * 1024 * 1024, 0, stream=stream)
    for _ in range(4):
        bar.last_draw = 0  # draw every update
        bar.update(1024 * 1024)
    bar.close()
    text = stream.getvalue()
    assert "\r" in text and "4.0/4.0 MB" in text and "MB/s" in text and "ETA" in text


def test_a_mirror_serving_a_crafted_pickle_runs_nothing(mirror_server, tmp_path):
    marker = tmp_path / "ran"
    mirror_server.routes[URL_PATH] = Route(f"cos\nsystem\n(Vtouch '{marker}'\ntR.".encode())
    with pytest.raises(dl.DownloadError, match=r"refused to load .*os\.system") as info:
        build_model({"name": NAME, "class_num": 10, "pretrained": True})
    assert "deleted" in str(info.value) and not marker.exists()
    assert not _cached().exists() and not Path(str(_cached()) + ".part").exists()


def test_two_concurrent_downloads_of_one_file_fetch_it_once(mirror_server, imagenet_weights):
    import threading

    mirror_server.routes[URL_PATH] = Route(imagenet_weights[1])
    paths, errors = [], []

    def fetch():
        try:
            paths.append(dl.download_weights(MODEL_URLS[NAME], progress=False))
        except Exception as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=fetch) for _ in range(2)]  # e.g. two training ranks on one machine
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and paths == [str(_cached())] * 2
    assert len(mirror_server.requests) == 1 and _cached().read_bytes() == imagenet_weights[1]
