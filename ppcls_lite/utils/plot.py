"""matplotlib for files only: the Agg backend (works on servers without a display) and `save_figure`.

The pictures themselves live with what they show: training curves in `ppcls_lite.engine.run_log`, the
confusion matrix of an eval report in `ppcls_lite.engine.reports`.
"""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never try to open a window
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save_figure"]


def save_figure(fig: "plt.Figure", png_path: str) -> Path:
    """Lay out, write as PNG (creating the folder) and free the figure; returns the path."""
    fig.tight_layout()
    png_path = Path(png_path)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return png_path
