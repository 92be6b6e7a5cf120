"""The image file suffixes segkit lists from folders: one list, so every reader takes the same files."""
from __future__ import annotations

# Every suffix is one cv2.imread decodes (tests/utils/test_images.py writes and reads each back), so a file a
# folder listing takes is one the datasets can read. Left out: .exr, which OpenCV reads only when built with
# OpenEXR and OPENCV_IO_ENABLE_OPENEXR is set. Anything else in an image folder (a README, a .DS_Store) is ignored.
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".png", ".bmp", ".dib", ".gif", ".tif", ".tiff", ".webp",
    ".ppm", ".pgm", ".pbm", ".pnm", ".jp2", ".hdr", ".pic", ".ras", ".sr", ".avif",
)
