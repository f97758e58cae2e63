"""Small on-disk image datasets and the files users bring (phone JPEGs with EXIF, CMYK, 16-bit, GIF, ...)."""
import io
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


def make_image_folder(root, class_names=("circle", "square", "stripes"), per_class=6, size=32, seed=0):
    """Write a small class-folder dataset of PNGs whose classes are visually distinct, plus list files.

    Returns the root Path. Layout: root/<class>/<i>.png, root/train_list.txt, root/val_list.txt,
    root/label_list.txt (`id name`). Every other image goes to val.
    """
    import cv2

    root = Path(root)
    rng = np.random.default_rng(seed)
    train_lines, val_lines = [], []
    for label, name in enumerate(class_names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = rng.integers(0, 40, size=(size, size, 3), dtype=np.uint8)
            color = tuple(int(c) for c in rng.integers(150, 256, size=3))
            if label % 3 == 0:
                cv2.circle(img, (size // 2, size // 2), size // 3, color, -1)
            elif label % 3 == 1:
                cv2.rectangle(img, (size // 4, size // 4), (3 * size // 4, 3 * size // 4), color, -1)
            else:
                img[:, :: max(size // 8, 2)] = color
            rel = f"{name}/{i}.png"
            cv2.imwrite(str(root / rel), img)
            (val_lines if i % 2 else train_lines).append(f"{rel} {label}")
    (root / "train_list.txt").write_text("\n".join(train_lines) + "\n")
    (root / "val_list.txt").write_text("\n".join(val_lines) + "\n")
    (root / "label_list.txt").write_text("".join(f"{i} {n}\n" for i, n in enumerate(class_names)))
    return root


def image_files(root):
    """Every PNG under `root`, sorted."""
    return sorted(str(p) for p in Path(root).rglob("*.png"))


# Images users bring: phone JPEGs with EXIF orientation, CMYK, grey, 16-bit, palette, RGBA, GIF, WEBP, in
# folders and files whose names have spaces and Chinese characters.
# A viewer's rotation for each EXIF orientation, applied to the stored pixels.
EXIF_DISPLAY = {1: lambda a: a, 3: lambda a: np.rot90(a, 2), 6: lambda a: np.rot90(a, -1), 8: lambda a: np.rot90(a, 1)}


def smooth_photo(seed, h=480, w=640):
    """Smooth colours plus a bright vertical bar left of centre: rotations change what a 32 px crop shows."""
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (31, 31), 10)
    img[:, w // 2 - 60:w // 2 - 20] = (240, 230, 30)
    return img


def save_pil(img, path, fmt, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    path.write_bytes(buf.getvalue())


def orientation_jpeg(rgb, orientation, path):
    exif = Image.Exif()
    exif[0x0112] = orientation
    save_pil(Image.fromarray(rgb), path, "JPEG", quality=92, exif=exif)


def make_awkward_files(root):
    """Write the files; returns {relative path: label}."""
    phone = smooth_photo(0)
    files = {}
    for i, orientation in enumerate((1, 3, 6, 8)):
        rel = f"手机 photos/IMG 竖 {orientation}.jpg"
        orientation_jpeg(phone, orientation, root / rel)
        files[rel] = i
    # the orientation-6 photo rotated by hand and stored losslessly: must give the same tensor as the JPEG
    stored = cv2.cvtColor(cv2.imread(str(root / "手机 photos/IMG 竖 1.jpg")), cv2.COLOR_BGR2RGB)
    save_pil(Image.fromarray(np.ascontiguousarray(EXIF_DISPLAY[6](stored))), root / "hand rotated/旋转 6.png", "PNG")
    files["hand rotated/旋转 6.png"] = 2
    other = smooth_photo(1)
    save_pil(Image.fromarray(other).convert("CMYK"), root / "misc/cmyk 印刷.jpg", "JPEG", quality=92)
    save_pil(Image.fromarray(other).convert("L"), root / "misc/grey 灰.jpg", "JPEG", quality=92)
    deep = (cv2.GaussianBlur(np.random.default_rng(2).integers(0, 65536, (300, 400, 3)).astype(np.float32),
                             (31, 31), 10)).astype(np.uint16)
    (root / "misc").mkdir(exist_ok=True)
    cv2.imencode(".png", deep)[1].tofile(str(root / "misc/depth 16.png"))
    cv2.imencode(".png", deep[..., 0])[1].tofile(str(root / "misc/grey 16.png"))
    save_pil(Image.fromarray(other).convert("P", palette=Image.Palette.ADAPTIVE), root / "misc/palette 调色板.png", "PNG")
    alpha = np.linspace(0, 255, 640, dtype=np.uint8)[None, :].repeat(480, axis=0)
    save_pil(Image.fromarray(np.dstack([smooth_photo(3), alpha]), "RGBA"), root / "misc/rgba 透明.png", "PNG")
    frames = [Image.fromarray(smooth_photo(4)).convert("P"), Image.fromarray(smooth_photo(5)).convert("P")]
    save_pil(frames[0], root / "misc/动画 anim.gif", "GIF", save_all=True, append_images=frames[1:])
    save_pil(Image.fromarray(smooth_photo(6)), root / "misc/web p.webp", "WEBP", quality=90)
    for i, rel in enumerate(["misc/cmyk 印刷.jpg", "misc/grey 灰.jpg", "misc/depth 16.png", "misc/grey 16.png",
                             "misc/palette 调色板.png", "misc/rgba 透明.png", "misc/动画 anim.gif", "misc/web p.webp"]):
        files[rel] = i % 10
    return files
