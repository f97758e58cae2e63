"""Image search with an exported retrieval model (inference.yml `Global.output: features`): embed a gallery once
into an index file, then find the gallery images nearest to query images.

    predictor = Predictor("inference/")                      # a RecModel exported with infer_output_key: features
    index = build_index(predictor, "gallery/")               # a folder (label: sub-folder), a list file or one image
    index.save("gallery_index.npz")
    matches = search_files(predictor, GalleryIndex.load("gallery_index.npz"), ["query.jpg"], topk=5)
    # [{"file_name": "query.jpg", "matches": [{"rank": 1, "file_name", "label", "score"}, ...]}]

The score is the inner product of the finished embeddings (the cosine similarity when the export normalises them,
the default). Search is exact: numpy, in blocks of queries (memory: block x gallery), or faiss's flat
inner-product index when the `faiss` package is installed (`pip install faiss-cpu`; `engine="auto"` picks it).
The index file is a plain .npz (features, file names, labels, the export's identity), read without pickle.
"""
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import pipeline
from .predictor import Predictor

INDEX_FORMAT = 1
ENGINES = ("auto", "numpy", "faiss")
QUERY_BLOCK = 256  # queries scored at once by numpy (memory: QUERY_BLOCK x gallery floats)


class SearchIndexError(ValueError):
    """The index file is unusable (another format, another model, damaged); the message says what to do."""


def _require_features(predictor: Predictor) -> None:
    if predictor.output != "features":
        raise ValueError(f"{predictor.model_dir} holds a classifier (inference.yml output: {predictor.output}); "
                         f"search needs a retrieval model exported with Arch.infer_output_key: features (RecModel)")


def model_identity(predictor: Predictor) -> Dict[str, Any]:
    """What ties an index to the export that made it: model name, weights checksum, feature finishing."""
    info = predictor.config["Global"]
    post = (predictor.config.get("PostProcess") or {}).get("Embedding") or {}
    return {"model_name": info.get("model_name"),
            "weights_sha256": (info.get("sha256") or {}).get(info.get("params_file")),
            "normalize": post.get("normalize", True), "binarize": post.get("binarize")}


def gallery_entries(source: Union[str, Path]) -> List[Tuple[str, str]]:
    """[(image path, label)] of a gallery: a folder (label: the image's sub-folder below it, '' at its top), a
    list file (`path [label]` lines, the label any text after the last space, paths relative to the list) or one
    image (no label)."""
    path = Path(str(source))
    files = pipeline.collect_inputs(source, what="--gallery")
    if path.is_dir():
        return [(f, Path(f).parent.relative_to(path).as_posix() if Path(f).parent != path else "") for f in files]
    if pipeline.is_image_file(path.name):
        return [(files[0], "")]
    entries = []
    for _, line in pipeline.read_text_lines(path):
        if line.startswith("#"):
            continue
        name, label = pipeline.split_list_line(line)
        whole = Path(line) if os.path.isabs(line) else path.parent / line
        if label is None or whole.is_file():  # a file name with a space in it, no label
            name, label = line, ""
        entries.append((str(Path(name) if os.path.isabs(name) else path.parent / name), label))
    return entries


class GalleryIndex:
    """Gallery embeddings [N, D] (float32, finished as the export says) with their files and labels."""

    def __init__(self, features: np.ndarray, files: Sequence[str], labels: Sequence[str], model: Dict[str, Any]):
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.files, self.labels, self.model = list(files), list(labels), dict(model)
        if not (len(self.features) == len(self.files) == len(self.labels)):
            raise SearchIndexError(f"index: {len(self.features)} features but {len(self.files)} files, "
                              f"{len(self.labels)} labels; rebuild it with tools/search.py build")

    def __len__(self) -> int:
        return len(self.files)

    def save(self, path: Union[str, Path]) -> None:
        """Write the index as .npz through a temporary file (an existing index is replaced only when complete)."""
        path = Path(str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        meta = json.dumps({"format": INDEX_FORMAT, "model": self.model})
        with open(tmp, "wb") as f:
            np.savez(f, features=self.features, files=np.array(self.files, dtype=str),
                     labels=np.array(self.labels, dtype=str), meta=np.array(meta))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Union[str, Path]) -> "GalleryIndex":
        """Read an index written by `save` (no pickle: a file from elsewhere cannot run code)."""
        if not Path(str(path)).is_file():
            raise FileNotFoundError(f"index {path} does not exist; build it with tools/search.py build")
        try:
            with np.load(str(path), allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                if meta.get("format") != INDEX_FORMAT:
                    raise SearchIndexError(f"index {path} has format {meta.get('format')!r}, this code reads "
                                      f"{INDEX_FORMAT}; rebuild it with tools/search.py build")
                return cls(data["features"], data["files"].tolist(), data["labels"].tolist(), meta.get("model") or {})
        except (KeyError, ValueError, OSError) as exc:
            if isinstance(exc, SearchIndexError):
                raise
            raise SearchIndexError(f"index {path} cannot be read ({exc}); rebuild it with tools/search.py build") from None

    def check_model(self, predictor: Predictor) -> None:
        """Refuse queries embedded by another model than the gallery's (their scores would mean nothing)."""
        now = model_identity(predictor)
        if now != self.model:
            raise SearchIndexError(f"the index was built with another export ({self.model}) than {predictor.model_dir} "
                              f"({now}); rebuild it: tools/search.py build --model_dir {predictor.model_dir} ...")

    def search(self, queries: np.ndarray, topk: int = 5, engine: str = "auto") -> Tuple[np.ndarray, np.ndarray]:
        """(scores [Q, k], gallery positions [Q, k]) of the k best gallery images per query, best first (ties:
        lower position first); k = min(topk, gallery size)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.features.shape[1]:
            raise SearchIndexError(f"query features have shape {queries.shape}, the index holds {self.features.shape[1]}"
                              f"-d features")
        k = min(int(topk), len(self))
        if resolve_engine(engine) == "faiss":
            import faiss  # optional: pip install faiss-cpu

            index = faiss.IndexFlatIP(self.features.shape[1])
            index.add(self.features)
            scores, positions = index.search(queries, k)
            return scores, positions.astype(np.int64)
        scores, positions = [], []
        for start in range(0, len(queries), QUERY_BLOCK):
            similarity = queries[start:start + QUERY_BLOCK] @ self.features.T
            best = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
            positions.append(best)
            scores.append(np.take_along_axis(similarity, best, axis=1))
        return np.concatenate(scores), np.concatenate(positions)


def resolve_engine(engine: str) -> str:
    """"auto" -> "faiss" when the faiss package is installed, else "numpy"; "faiss" without it is an ImportError."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if engine == "numpy":
        return engine
    try:
        import faiss  # noqa: F401
    except ImportError:
        if engine == "faiss":
            raise ImportError("the faiss engine needs the faiss package: pip install faiss-cpu") from None
        return "numpy"
    return "faiss"


def embed_files(predictor: Predictor, files: Sequence[str]) -> Tuple[List[str], np.ndarray]:
    """(files embedded, their features [N, D]); unreadable files are reported on stderr and left out
    (`predictor.failures`)."""
    _require_features(predictor)
    results = predictor.predict_files(list(files))
    features = np.array([r["features"] for r in results], dtype=np.float32)
    return [r["file_name"] for r in results], features.reshape(len(results), -1)


def build_index(predictor: Predictor, gallery: Union[str, Path]) -> GalleryIndex:
    """Embed every image of `gallery` (see gallery_entries) with `predictor`."""
    entries = gallery_entries(gallery)
    files, features = embed_files(predictor, [f for f, _ in entries])
    if not files:
        raise ValueError(f"--gallery {gallery}: none of its {len(entries)} images could be read")
    label_of = dict(entries)
    return GalleryIndex(features, files, [label_of[f] for f in files], model_identity(predictor))


def search_files(predictor: Predictor, index: GalleryIndex, queries: Sequence[str], topk: int = 5,
                 engine: str = "auto") -> List[Dict[str, Any]]:
    """For each readable query image: {"file_name", "matches": [{"rank", "file_name", "label", "score"}]}."""
    index.check_model(predictor)
    files, features = embed_files(predictor, queries)
    if not files:
        return []
    scores, positions = index.search(features, topk, engine)
    return [{"file_name": query,
             "matches": [{"rank": rank, "file_name": index.files[p], "label": index.labels[p],
                          "score": round(float(s), pipeline.SCORE_DECIMALS)}
                         for rank, (s, p) in enumerate(zip(row_scores, row_positions), 1)]}
            for query, row_scores, row_positions in zip(files, scores, positions)]


def format_matches(result: Dict[str, Any]) -> str:
    """A query's matches for the terminal: the query, then one `rank  score  file  label` line each."""
    lines = [f"query: {result['file_name']}"]
    lines += [f"  {m['rank']:>3}  {m['score']:.5f}  {m['file_name']}" + (f"  {m['label']}" if m["label"] else "")
              for m in result["matches"]]
    return "\n".join(lines)


def write_matches(results: Sequence[Dict[str, Any]], output: Union[str, Path]) -> None:
    """FILE.jsonl (one query per line, as returned) or FILE.csv (`query,rank,file_name,label,score`, one row per
    match), written through a temporary file."""
    import csv

    output = Path(str(output))
    suffix = pipeline.check_output_path(output)
    tmp = output.with_name(output.name + ".tmp")
    output.parent.mkdir(parents=True, exist_ok=True)
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        if suffix == ".csv":
            writer = csv.writer(f)
            writer.writerow(["query", "rank", "file_name", "label", "score"])
            for r in results:
                writer.writerows([r["file_name"], m["rank"], m["file_name"], m["label"], m["score"]]
                                 for m in r["matches"])
        else:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in results)
    os.replace(tmp, output)
