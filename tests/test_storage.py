import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from eva_depthmask.storage import (
    DatasetError,
    Store,
    atomic_write,
    decode_depth,
    decode_image,
    decode_mask,
    encode_depth,
    encode_image,
    encode_mask,
    quantize_depth,
    write_files,
    zip_folder,
)


def test_depth_png_round_trip_is_the_16_bit_grid():
    depth = np.random.default_rng(0).random((17, 23)).astype(np.float32)
    back = decode_depth(encode_depth(depth), "d")
    assert back.dtype == np.float32 and back.shape == (17, 23)
    np.testing.assert_array_equal(back, quantize_depth(depth))
    assert np.abs(back - depth).max() <= 0.5 / 65535 + 1e-7


def test_eight_bit_and_three_channel_depth_maps_are_converted(tmp_path):
    grey = np.arange(0, 256, 16, dtype=np.uint8).reshape(4, 4)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    for arr in (grey, rgb):
        Image.fromarray(arr).save(tmp_path / "d.png")
        out = decode_depth((tmp_path / "d.png").read_bytes(), "d.png")
        np.testing.assert_allclose(out, grey / 255.0, atol=1e-6)


def test_mask_and_image_round_trip():
    mask = (np.random.default_rng(1).random((9, 9)) > 0.5).astype(np.uint8)
    np.testing.assert_array_equal(decode_mask(encode_mask(mask), "m"), mask)
    img = np.random.default_rng(2).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode_image(img, "png"), "i"), img)
    yy, xx = np.mgrid[:32, :32] * 8
    smooth = np.dstack([yy, xx, np.full_like(yy, 90)]).astype(np.uint8)
    assert np.abs(decode_image(encode_image(smooth, "jpg"), "i").astype(int) - smooth).max() <= 4
    with pytest.raises(ValueError, match="image_format"):
        encode_image(img, "gif")


def test_jpeg_mask_is_rebinarised():
    mask = np.zeros((32, 32), np.uint8)
    mask[8:24, 8:24] = 255
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, "JPEG", quality=70)
    out = decode_mask(buf.getvalue(), "m.jpg")
    assert set(np.unique(out)) <= {0, 1}
    assert (out != (mask > 0)).mean() < 0.02


def test_atomic_write_replaces_whole_and_cleans_up_on_failure(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, b"old")

    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # fails inside the write
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]  # no temporary left behind
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new"


def _files(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_write_files_writes_all_or_nothing(tmp_path):
    folder = tmp_path / "new" / "out"
    paths = write_files(folder, {"a.txt": b"1", "b.txt": b"2"})
    assert paths == [folder / "a.txt", folder / "b.txt"]
    assert _files(folder) == {"a.txt": b"1", "b.txt": b"2"}
    # the second file fails while being written: the first is not left behind, nor is the folder
    # (and its parent) this call made
    with pytest.raises(TypeError):
        write_files(tmp_path / "other" / "out", {"a.txt": b"1", "b.txt": "not bytes"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new"]
    # in a folder that exists: nothing replaced, no temporary left
    with pytest.raises(TypeError):
        write_files(folder, {"a.txt": b"new", "b.txt": "not bytes"})
    assert _files(folder) == {"a.txt": b"1", "b.txt": b"2"}
    # a folder where a file goes fails before anything is replaced
    (folder / "c.txt").mkdir()
    with pytest.raises(IsADirectoryError, match="c.txt"):
        write_files(folder, {"a.txt": b"new", "c.txt": b"3"})
    assert _files(folder) == {"a.txt": b"1", "b.txt": b"2"}


def test_a_zip_that_cannot_be_written_leaves_no_part_and_names_itself(tmp_path):
    (tmp_path / "ds" / "bg").mkdir(parents=True)
    (tmp_path / "ds" / "bg" / "0.png").write_bytes(b"abc")
    (tmp_path / "ds.zip").mkdir()  # where the zip goes
    with pytest.raises(DatasetError, match=r"ds\.zip: could not write the zip .*ds is intact"):
        zip_folder(tmp_path / "ds", tmp_path / "ds.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "ds.zip"]
    assert list((tmp_path / "ds.zip").iterdir()) == []
    (tmp_path / "ds.zip").rmdir()
    zip_folder(tmp_path / "ds", tmp_path / "ds.zip")
    assert Store(tmp_path / "ds.zip", prefix="").read("bg/0.png") == b"abc"


def test_store_reads_folder_and_zip_alike(tmp_path):
    root = tmp_path / "ds"
    (root / "bg").mkdir(parents=True)
    (root / "manifest.csv").write_text("id\n")
    (root / "bg" / "0.png").write_bytes(b"abc")
    with zipfile.ZipFile(tmp_path / "ds.zip", "w") as zf:  # one folder level inside, as users zip
        zf.write(root / "manifest.csv", "ds/manifest.csv")
        zf.write(root / "bg" / "0.png", "ds/bg/0.png")
    for store in (Store(root), Store(tmp_path / "ds.zip")):
        assert store.read("bg/0.png") == b"abc"
        assert store.listing() == {"manifest.csv", "bg/0.png"}
        assert store.exists("bg/0.png") and not store.exists("bg/1.png")
        with pytest.raises(DatasetError, match="bg/1.png: missing file"):
            store.read("bg/1.png")


def test_store_refuses_what_is_not_a_dataset(tmp_path):
    with pytest.raises(DatasetError, match="no such dataset"):
        Store(tmp_path / "nothing")
    (tmp_path / "fake.zip").write_bytes(b"PK not really")
    with pytest.raises(DatasetError, match="not a zip"):
        Store(tmp_path / "fake.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("photos/a.jpg", b"x")
    with pytest.raises(DatasetError, match="other.zip.*no manifest.csv"):
        Store(tmp_path / "other.zip")
