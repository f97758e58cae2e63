"""Image search with an exported retrieval model (a RecModel exported with Arch.infer_output_key: features).

    python tools/search.py build --model_dir DIR --gallery IMG|DIR|LIST --index gallery.npz
    python tools/search.py query --model_dir DIR --index gallery.npz --input IMG|DIR|LIST [--topk 5]
        [--engine auto|numpy|faiss] [--output FILE.csv|FILE.jsonl]
    (both: [--backend paddle|onnxruntime|mnn] [--batch_size N] [--threads N] [--precision fp32|fp16|int8])

`build` embeds the gallery (a folder: each image labelled by its sub-folder; a list file: `path [label]` lines)
into an index file; `query` prints, for each query image, the top-k gallery images with their labels and scores
(inner product of the embeddings: cosine similarity when the export normalises them). `--engine auto` uses faiss
when installed (pip install faiss-cpu), numpy otherwise; both are exact. The library is ppcls_lite.predict.search.
Exit status: 0, 3 when some images could not be read (named on stderr; the others are used), 1 on an error.
"""
import argparse
import os
import sys
from typing import List, Optional

sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

from ppcls_lite.pipeline import EXIT_SOME_FAILED, check_output_path, collect_inputs  # noqa: E402
from ppcls_lite.predict import BACKENDS, PRECISIONS, Predictor, PredictorSettings  # noqa: E402
from ppcls_lite.predict.search import (ENGINES, GalleryIndex, build_index, format_matches, search_files,  # noqa: E402
                                       write_matches)
from ppcls_lite.utils.cli import run_cli  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """`build` and `query` sub-commands, sharing the predictor's runtime flags."""
    runtime = argparse.ArgumentParser(add_help=False)
    runtime.add_argument("--model_dir", required=True, help="export folder of a retrieval model")
    runtime.add_argument("--index", required=True, help="the index file (.npz) to write or read")
    runtime.add_argument("--backend", choices=BACKENDS.names(), default="paddle")
    runtime.add_argument("--precision", choices=PRECISIONS, default="fp32")
    runtime.add_argument("--batch_size", type=int, default=8)
    runtime.add_argument("--threads", type=int, help="CPU threads of the backend")
    parser = argparse.ArgumentParser(description="Image search with an exported retrieval model")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", parents=[runtime], help="embed a gallery into an index file")
    build.add_argument("--gallery", required=True, help="image, folder (sub-folders are labels) or list file")
    query = commands.add_parser("query", parents=[runtime], help="find the gallery images nearest to queries")
    query.add_argument("--input", required=True, help="query image, folder or list file")
    query.add_argument("--topk", type=int, default=5, help="matches per query (default 5)")
    query.add_argument("--engine", choices=ENGINES, default="auto", help="auto: faiss when installed, else numpy")
    query.add_argument("--output", help="also write the matches to FILE.csv or FILE.jsonl")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Run `build` or `query`; returns the exit status."""
    args = build_parser().parse_args(argv)
    if getattr(args, "output", None):
        check_output_path(args.output)
    settings = PredictorSettings(backend=args.backend, precision=args.precision, batch_size=args.batch_size,
                                 threads=args.threads)
    predictor = Predictor(args.model_dir, settings)
    if args.command == "build":
        index = build_index(predictor, args.gallery)
        index.save(args.index)
        print(f"indexed {len(index)} images ({index.features.shape[1]}-d features) in {args.index}", file=sys.stderr)
    else:
        results = search_files(predictor, GalleryIndex.load(args.index), collect_inputs(args.input), args.topk,
                               args.engine)
        for result in results:
            print(format_matches(result), flush=True)
        if args.output:
            write_matches(results, args.output)
            print(f"wrote the matches of {len(results)} queries to {args.output}", file=sys.stderr)
    return EXIT_SOME_FAILED if predictor.failures else 0


if __name__ == "__main__":
    sys.exit(run_cli(main, output_option="--output FILE"))
