"""The one image pipeline of ppcls_lite: decoding, the deterministic ops, input collection, list parsing,
the post-processes (top-k, embeddings), result files, and the Registry every builder uses. Training, eval, infer, export and the deploy
predictor all use it.

It depends on numpy, opencv and (for `backend: pil`) Pillow only, and imports its own modules relatively, so
tools/export_model.py copies it (with ppcls_lite/predict, the predictor that uses it) into every export folder,
where deploy/python/predict_cls.py runs it without paddle or the rest of ppcls_lite.
"""
from .checksums import ChecksumError, model_files, sha256_file, verify_checksums
from .decode import (DECODE_BACKENDS, DEFAULT_MAX_IMAGE_PIXELS, IMAGE_EXTENSIONS, MAX_PIXELS_ENV, ImageDecodeError,
                     ImageTooLargeError, check_pixel_limit, decode_image, looks_truncated, max_image_pixels,
                     set_max_image_pixels)
from .image_header import image_size
from .inputs import (FolderScan, NotAFileError, check_regular_file, collect_inputs, file_kind, is_foreign,
                     is_image_file, list_line_path, missing_paths_hint, read_image_file, read_label_names,
                     read_text_lines, scan_folder, scan_images, split_list_line)
from .registry import Registry, UnknownNameError, accepted_kwargs, check_keys, did_you_mean, parse_named_list
from .ops import (CV2_INTERPOLATIONS, INFERENCE_OPERATORS, INTERPOLATIONS, CropImage, DecodeImage,
                  NormalizeImage, NormalizeToCHW, Operator, Resizer, ResizeImage, ToCHWImage, check_choice,
                  create_operators, describe_operators, fuse_operators, no_effect_warning, parse_scale, size_pair,
                  to_chw_float32, transform)
from .postprocess import (POSTPROCESSES, SHIPPED_IMAGENET_LABELS, Topk, build_postprocess, read_class_id_map,
                          resolve_class_id_map_file)
from .features import Embedding, finish_features
from .results import (EXIT_SOME_FAILED, FEATURE_RESULT_KEYS, OUTPUT_SUFFIXES, RESULT_KEYS, SCORE_DECIMALS,
                      NonFiniteOutputError, ResultWriteError, check_output_path, format_line, format_row, result_keys,
                      softmax, split_finite, topk_results, write_results)
from .runner import (READ_ERRORS, failure_reason, format_failure, format_summary, load_each, load_file,
                     predict_loaded, stack_batch)
