"""Colour: embedded ICC profiles (Display P3, Adobe RGB, CMYK, 16-bit,
grey) are honoured, and `profile = keep` embeds the source's profile.

The inputs are made here from one sRGB "photo" (samples/landscape.jpg with
a row of saturated colour-checker patches under it): converted with vips
to Display P3 (libvips' built-in p3) and Adobe RGB (colord-data's
AdobeRGB1998.icc) with the profile embedded, in every format this libvips
can write.  Each thumbnail must match the sRGB original's thumbnail: mean
within 3/255 per channel, and the red patch within dE00 2.
"""

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import (TIMEOUT, empty_env, run_tw, sample, vips, write_ini)

ADOBE = Path("/usr/share/color/icc/colord/AdobeRGB1998.icc")
GREY = Path("/usr/share/color/icc/Gray.icc")
CMYK = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")

# (r, g, b) of the checker patches, 100x200 each, under the photo
PATCHES = [(200, 40, 40), (40, 170, 60), (40, 60, 200), (230, 200, 40),
           (40, 190, 210), (200, 150, 120), (120, 60, 160), (250, 120, 30)]
# the red patch in the 240x300 thumbnail of the 800x1000 photo: x 0..30,
# y 240..300; its middle
PATCH_BOX = (6, 250, 16, 40)


def have_saver(name):
    r = subprocess.run(["vips", "-l"], capture_output=True, text=True)
    return name in r.stdout


def heif_ok(tmp, ext):
    """This libvips/libheif can write ext (HEIC needs an HEVC encoder)."""
    try:
        vips("black", tmp / "b.v", 16, 16, "--bands", 3)
        vips("copy", tmp / "b.v", tmp / f"probe.{ext}")
        return True
    except AssertionError:
        return False


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """The sRGB photo as a .v (no profile), 800x1000."""
    d = tmp_path_factory.mktemp("colour-src")
    tiles = []
    for i, (r, g, b) in enumerate(PATCHES):
        vips("black", d / f"k{i}.v", 100, 200, "--bands", 3)
        vips("linear", d / f"k{i}.v", d / f"p{i}.v", "1 1 1",
             f"{r} {g} {b}", "--uchar")
        tiles.append(str(d / f"p{i}.v"))
    vips("arrayjoin", " ".join(tiles), d / "strip.v")
    # upright (the sample has EXIF orientation 6), square, 800 wide
    vips("autorot", sample("landscape.jpg"), d / "up.v")
    # libvips 8.14 leaves the tag on: a stripped PNG has none
    vips("pngsave", d / "up.v", d / "up.png", "--strip")
    vips("extract_area", d / "up.png", d / "sq.v", 0, 0, 533, 533)
    vips("resize", d / "sq.v", d / "land.v", 800 / 533)
    vips("black", d / "canvas.v", 800, 1000, "--bands", 3)
    vips("insert", d / "canvas.v", d / "land.v", d / "photo0.v", 0, 0)
    vips("insert", d / "photo0.v", d / "strip.v", d / "photo1.v", 0, 800)
    vips("copy", d / "photo1.v", d / "photo.v", "--interpretation", "srgb")
    return d


def encode(v, out):
    ext = out.suffix
    opts = {".jpg": "[Q=95]", ".webp": "[Q=95]", ".heic": "[Q=95]",
            ".avif": "[Q=95]"}.get(ext, "")
    vips("copy", v, str(out) + opts)


def once(root, ini=""):
    write_ini(root / "tw.ini", ini)
    r = run_tw(["once", "--config", root / "tw.ini", "--env-file",
                empty_env(root), "--input-dir", root / "in",
                "--output-dir", root / "out", "--log-file",
                root / "tw.log", "--workers", "2"],
               cwd=root, timeout=2 * TIMEOUT)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


def means(path):
    """Mean of each band of an image, from vips stats."""
    st = path.parent / (path.name + ".stats.v")
    vips("stats", path, st)
    out = []
    for b in (1, 2, 3):
        r = subprocess.run(["vips", "getpoint", st, "4", str(b)],
                           capture_output=True, text=True, check=True)
        out.append(float(r.stdout.split()[0]))
    return out


def patch_de(a, b):
    """Mean dE00 between the red patch of two same-size thumbnails."""
    x, y, w, h = PATCH_BOX
    d = a.parent
    vips("extract_area", a, d / "pa.v", x, y, w, h)
    vips("extract_area", b, d / "pb.v", x, y, w, h)
    vips("dE00", d / "pa.v", d / "pb.v", d / "de.v")
    r = subprocess.run(["vips", "avg", d / "de.v"], capture_output=True,
                       text=True, check=True)
    return float(r.stdout)


def has_profile(path):
    r = subprocess.run(["vipsheader", "-f", "icc-profile-data", path],
                       capture_output=True)
    return r.returncode == 0 and len(r.stdout) > 0


@pytest.fixture(scope="module")
def reference(photo, tmp_path_factory):
    """thumbwatch's thumbnail of the sRGB original (no profile)."""
    root = tmp_path_factory.mktemp("colour-ref")
    (root / "in").mkdir()
    encode(photo / "photo.v", root / "in" / "orig.png")
    once(root)
    return root / "out" / "orig_thumb.jpg"


def assert_matches(thumb, ref, tol=3.0, de=2.0):
    m, r = means(thumb), means(ref)
    diff = [abs(a - b) for a, b in zip(m, r)]
    assert max(diff) <= tol, \
        f"{thumb.name}: mean {m} vs sRGB original's {r} (diff {diff})"
    e = patch_de(thumb, ref)
    assert e <= de, f"{thumb.name}: red patch dE00 {e:.2f} > {de}"


FORMATS = ["jpg", "png", "webp", "tif", "heic", "avif"]


@pytest.mark.parametrize("space", ["p3", "adobe"])
def test_wide_gamut_sources_match_srgb_original(space, photo, reference,
                                                tmp_path):
    if space == "adobe" and not ADOBE.exists():
        pytest.skip(f"{ADOBE} missing (apt-get install colord-data)")
    prof = "p3" if space == "p3" else str(ADOBE)
    vips("icc_transform", photo / "photo.v", tmp_path / "w.v", prof,
         "--input-profile", "srgb")
    (tmp_path / "in").mkdir()
    made = []
    for ext in FORMATS:
        if ext in ("heic", "avif") and not heif_ok(tmp_path, ext):
            continue
        encode(tmp_path / "w.v", tmp_path / "in" / f"{space}_{ext}.{ext}")
        assert has_profile(tmp_path / "in" / f"{space}_{ext}.{ext}"), ext
        made.append(ext)
    assert {"jpg", "png", "webp", "tif"} <= set(made)
    once(tmp_path)
    for ext in made:
        assert_matches(tmp_path / "out" / f"{space}_{ext}_thumb.jpg",
                       reference)


def nclx_avif(png, out, cicp):
    """png (no profile) as an AVIF whose colours are told only by an nclx
    box of cicp (primaries/transfer/matrix), as Android phones write."""
    subprocess.run(["avifenc", "-y", "444", "--min", "0", "--max", "4",
                    "-s", "8", "--cicp", cicp, "--ignore-icc", png, out],
                   check=True, capture_output=True)


class HeifError(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("subcode", ctypes.c_int),
                ("message", ctypes.c_char_p)]

class EncOpts(ctypes.Structure):   # libheif 1.15's version 4 head
    _fields_ = [("version", ctypes.c_uint8), ("save_alpha", ctypes.c_uint8),
                ("macos", ctypes.c_uint8), ("two_colr", ctypes.c_uint8),
                ("nclx", ctypes.c_void_p), ("no_nclx", ctypes.c_uint8)]

def nclx_heic(rgb, w, h, out, prim, trc, mat):
    """8-bit RGB bytes as an HEIC whose colours are told only by an nclx
    box, through libheif itself: heif-enc 1.15 and libvips write no nclx
    box on HEVC (libheif's macOS workaround, on by default)."""
    lib = ctypes.CDLL(ctypes.util.find_library("heif") or "libheif.so.1")
    vp = ctypes.c_void_p
    for f in ("heif_context_get_encoder_for_format", "heif_image_create",
              "heif_image_add_plane", "heif_image_set_nclx_color_profile",
              "heif_encoder_set_lossy_quality", "heif_encoder_set_parameter",
              "heif_context_encode_image", "heif_context_write_to_file",
              "heif_nclx_color_profile_set_color_primaries",
              "heif_nclx_color_profile_set_transfer_characteristics",
              "heif_nclx_color_profile_set_matrix_coefficients"):
        getattr(lib, f).restype = HeifError
    lib.heif_context_alloc.restype = vp
    lib.heif_nclx_color_profile_alloc.restype = vp
    lib.heif_encoding_options_alloc.restype = ctypes.POINTER(EncOpts)
    lib.heif_image_get_plane.restype = ctypes.POINTER(ctypes.c_uint8)
    lib.heif_image_get_plane.argtypes = [vp, ctypes.c_int,
                                         ctypes.POINTER(ctypes.c_int)]

    def ok(e):
        assert e.code == 0, e.message

    ctx = vp(lib.heif_context_alloc())
    enc, img = vp(), vp()
    ok(lib.heif_context_get_encoder_for_format(ctx, 1, ctypes.byref(enc)))
    ok(lib.heif_encoder_set_lossy_quality(enc, 95))
    lib.heif_encoder_set_parameter(enc, b"chroma", b"444")
    ok(lib.heif_image_create(w, h, 1, 10, ctypes.byref(img)))
    ok(lib.heif_image_add_plane(img, 10, w, h, 8))
    stride = ctypes.c_int()
    plane = lib.heif_image_get_plane(img, 10, ctypes.byref(stride))
    for y in range(h):
        ctypes.memmove(ctypes.addressof(plane.contents) + y * stride.value,
                       rgb[y * w * 3:(y + 1) * w * 3], w * 3)
    nclx = vp(lib.heif_nclx_color_profile_alloc())
    ok(lib.heif_nclx_color_profile_set_color_primaries(nclx, prim))
    ok(lib.heif_nclx_color_profile_set_transfer_characteristics(nclx, trc))
    ok(lib.heif_nclx_color_profile_set_matrix_coefficients(nclx, mat))
    ok(lib.heif_image_set_nclx_color_profile(img, nclx))
    opts = lib.heif_encoding_options_alloc()
    assert opts.contents.version >= 4
    opts.contents.nclx = nclx.value
    opts.contents.no_nclx = 0
    ok(lib.heif_context_encode_image(ctx, img, enc, opts, None))
    ok(lib.heif_context_write_to_file(ctx, str(out).encode()))


@pytest.mark.parametrize("ext,space,cicp", [("avif", "p3", "12/13/6"),
                                            ("avif", "srgb", "1/13/6"),
                                            ("heic", "p3", "12/13/6")])
def test_nclx_without_icc(ext, space, cicp, photo, reference, tmp_path):
    """An AVIF or HEIC with Display P3 primaries (12) and the sRGB
    transfer (13) in an nclx box and no ICC profile is converted as if it
    carried the Display P3 profile (libvips 8.14 alone takes its numbers
    as sRGB's: the mean's red 7.7/255 off); one with BT.709 primaries is
    left alone."""
    if ext == "avif" and shutil.which("avifenc") is None:
        pytest.skip("avifenc missing (apt-get install libavif-bin)")
    if ext == "heic" and not heif_ok(tmp_path, "heic"):
        pytest.skip("this libheif has no HEVC encoder")
    (tmp_path / "in").mkdir()
    vips("icc_transform", photo / "photo.v", tmp_path / "w.v", space,
         "--input-profile", "srgb")
    out = tmp_path / "in" / f"nclx.{ext}"
    if ext == "avif":
        vips("pngsave", tmp_path / "w.v", tmp_path / "w.png", "--strip")
        assert not has_profile(tmp_path / "w.png")
        nclx_avif(tmp_path / "w.png", out, cicp)
    else:
        vips("rawsave", tmp_path / "w.v", tmp_path / "w.raw")
        prim, trc, mat = (int(x) for x in cicp.split("/"))
        nclx_heic((tmp_path / "w.raw").read_bytes(), 800, 1000, out, prim,
                  trc, mat)
    assert not has_profile(out)
    once(tmp_path)
    assert_matches(tmp_path / "out" / "nclx_thumb.jpg", reference)


def test_16bit_png_with_profile(photo, reference, tmp_path):
    vips("icc_transform", photo / "photo.v", tmp_path / "w16.v", "p3",
         "--input-profile", "srgb", "--depth", "16")
    (tmp_path / "in").mkdir()
    vips("pngsave", tmp_path / "w16.v", tmp_path / "in" / "deep.png")
    r = subprocess.run(["vipsheader", tmp_path / "in" / "deep.png"],
                       capture_output=True, text=True)
    assert "ushort" in r.stdout, r.stdout
    once(tmp_path)
    assert_matches(tmp_path / "out" / "deep_thumb.jpg", reference)


def test_srgb_profile_and_no_profile_are_left_alone(photo, reference,
                                                    tmp_path):
    """An sRGB profile (libvips' own, and colord's) changes nothing."""
    (tmp_path / "in").mkdir()
    vips("icc_transform", photo / "photo.v", tmp_path / "s.v", "srgb",
         "--input-profile", "srgb")
    encode(tmp_path / "s.v", tmp_path / "in" / "vsrgb.png")
    colord = Path("/usr/share/color/icc/colord/sRGB.icc")
    if colord.exists():
        vips("icc_transform", photo / "photo.v", tmp_path / "c.v",
             colord, "--input-profile", "srgb")
        encode(tmp_path / "c.v", tmp_path / "in" / "csrgb.png")
    once(tmp_path)
    for p in sorted((tmp_path / "out").glob("*.jpg")):
        assert_matches(p, reference, tol=1.0, de=0.5)


def test_grey_with_profile(photo, tmp_path):
    """A grey image with a grey profile (icc-profiles-free's Gray.icc,
    gamma 1.0, far from sRGB's curve) comes out as the grey original."""
    if not GREY.exists():
        pytest.skip(f"{GREY} missing (apt-get install icc-profiles-free)")
    (tmp_path / "in").mkdir()
    vips("colourspace", photo / "photo.v", tmp_path / "g.v", "b-w")
    vips("icc_transform", photo / "photo.v", tmp_path / "gg.v", GREY,
         "--input-profile", "srgb")
    r = subprocess.run(["vipsheader", tmp_path / "gg.v"], capture_output=True,
                       text=True)
    if "1 band" not in r.stdout:
        pytest.skip(f"this libvips cannot write grey with a grey profile: "
                    f"{r.stdout}")
    vips("pngsave", tmp_path / "gg.v", tmp_path / "in" / "grey.png")
    once(tmp_path)
    # the grey original, as sRGB, thumbnailed the same way
    vips("colourspace", tmp_path / "g.v", tmp_path / "g3.v", "srgb")
    vips("thumbnail", tmp_path / "g3.v", tmp_path / "ref.v", 300)
    vips("jpegsave", tmp_path / "ref.v", tmp_path / "ref.jpg", "--Q", 85)
    assert_matches(tmp_path / "out" / "grey_thumb.jpg",
                   tmp_path / "ref.jpg", de=3.0)


def test_cmyk_with_its_own_profile(photo, reference, tmp_path):
    """A CMYK JPEG is read through its embedded profile (ghostscript's
    default_cmyk.icc, not libvips' generic CMYK one), relative colorimetric
    with black-point compensation, as a colour-managed viewer shows it;
    libvips 8.14's own thumbnail import comes out 10/255 darker."""
    if not CMYK.exists():
        pytest.skip(f"{CMYK} missing (apt-get install libgs-common)")
    (tmp_path / "in").mkdir()
    vips("icc_transform", photo / "photo.v", tmp_path / "c.v", CMYK,
         "--input-profile", "srgb", "--black-point-compensation")
    vips("jpegsave", tmp_path / "c.v", tmp_path / "in" / "cmyk.jpg",
         "--Q", 95)
    once(tmp_path)
    # the viewer: the whole image through its profile, then thumbnailed
    vips("icc_transform", tmp_path / "in" / "cmyk.jpg", tmp_path / "v.v",
         "srgb", "--embedded", "--black-point-compensation")
    vips("thumbnail", tmp_path / "v.v", tmp_path / "view.v", 300)
    vips("jpegsave", tmp_path / "view.v", tmp_path / "view.jpg", "--Q", 85)
    vips("icc_transform", tmp_path / "in" / "cmyk.jpg", tmp_path / "g.v",
         "srgb", "--input-profile", "cmyk", "--black-point-compensation")
    vips("thumbnail", tmp_path / "g.v", tmp_path / "generic.jpg", 300)
    out = tmp_path / "out" / "cmyk_thumb.jpg"
    assert_matches(out, tmp_path / "view.jpg")
    # and near the sRGB original (CMYK's gamut clips the saturated
    # patches: about 6/255 in blue)
    assert_matches(out, reference, tol=8.0, de=6.0)
    far = [abs(a - b) for a, b in zip(means(out),
                                      means(tmp_path / "generic.jpg"))]
    assert max(far) > 6, f"as the generic CMYK profile gives: {far}"


KEEP_INI = """\
[preset keep]
width = 300
height = 300
profile = keep

[preset conv]
width = 200
height = 200
strip = false
"""


def test_profile_keep_embeds_the_source_profile(photo, reference, tmp_path):
    """profile = keep: the P3 numbers and the P3 profile, and no other
    metadata; a colour-managed reading of it matches the original."""
    (tmp_path / "in").mkdir()
    vips("icc_transform", photo / "photo.v", tmp_path / "w.v", "p3",
         "--input-profile", "srgb")
    vips("jpegsave", tmp_path / "w.v", tmp_path / "in" / "p3.jpg", "--Q", 95)
    once(tmp_path, KEEP_INI)
    keep = tmp_path / "out" / "p3_keep.jpg"
    conv = tmp_path / "out" / "p3_conv.jpg"
    assert has_profile(keep)
    r = subprocess.run(["vipsheader", "-a", keep], capture_output=True,
                       text=True)
    assert "xmp-data" not in r.stdout and "iptc-data" not in r.stdout
    # the numbers are still P3's: off as sRGB, right once converted
    far = [abs(a - b) for a, b in zip(means(keep), means(reference))]
    assert max(far) > 5, far
    vips("icc_transform", keep, tmp_path / "k.v", "srgb", "--embedded")
    vips("jpegsave", tmp_path / "k.v", tmp_path / "k.jpg", "--Q", 95)
    assert_matches(tmp_path / "k.jpg", reference)
    # strip = false with profile = srgb: converted, sRGB profile embedded
    assert has_profile(conv)
    vips("thumbnail", reference, tmp_path / "r200.v", 200)
    vips("jpegsave", tmp_path / "r200.v", tmp_path / "r200.jpg")
    m, r0 = means(conv), means(tmp_path / "r200.jpg")
    assert max(abs(a - b) for a, b in zip(m, r0)) <= 3, (m, r0)
