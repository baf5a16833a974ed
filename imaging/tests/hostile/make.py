#!/usr/bin/env python3
"""Writes the hostile DICOM corpus next to this script, byte by byte (no
DICOM library: these files are what a library would refuse to write).
Each file is named for what it does; tests/hostile.rs says what must happen
to each. Re-run after changing it: `python3 imaging/tests/hostile/make.py`."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG2000 = "1.2.840.10008.1.2.4.90"
RLE = "1.2.840.10008.1.2.5"
LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
UNDEFINED = 0xFFFFFFFF


def pad(v: bytes, vr: bytes) -> bytes:
    if len(v) % 2:
        v += b"\0" if vr in (b"UI", b"OB", b"UN") else b" "
    return v


def el(group, elem, vr, value=b"", length=None):
    """Explicit VR little endian element; `length` overrides the real one."""
    vr = vr.encode()
    if isinstance(value, str):
        value = value.encode()
    value = pad(value, vr) if length is None else value
    n = len(value) if length is None else length
    head = struct.pack("<HH", group, elem) + vr
    if vr in LONG_VRS:
        head += b"\0\0" + struct.pack("<I", n)
    else:
        head += struct.pack("<H", n)
    return head + value


def implicit(group, elem, value=b"", length=None):
    n = len(value) if length is None else length
    return struct.pack("<HHI", group, elem, n) + value


def item(value=b"", length=None):
    return struct.pack("<HHI", 0xFFFE, 0xE000, len(value) if length is None else length) + value


ITEM_END = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
SEQ_END = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)


def meta(ts=EXPLICIT_LE):
    body = el(0x0002, 0x0001, "OB", b"\0\1") + el(0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.2")
    body += el(0x0002, 0x0003, "UI", "1.2.3.4.5.6.7") + el(0x0002, 0x0010, "UI", ts)
    return b"\0" * 128 + b"DICM" + el(0x0002, 0x0000, "UL", struct.pack("<I", len(body))) + body


def ids(name="Hostile^Test", charset=None, pid="H0001"):
    out = b""
    if charset is not None:
        out += el(0x0008, 0x0005, "CS", charset)
    out += el(0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.2")
    out += el(0x0008, 0x0018, "UI", "1.2.3.4.5.6.7")
    out += el(0x0008, 0x0060, "CS", "CT")
    out += el(0x0010, 0x0010, "PN", name)
    out += el(0x0010, 0x0020, "LO", pid)
    out += el(0x0020, 0x000D, "UI", "1.2.3.4.5.1")
    out += el(0x0020, 0x000E, "UI", "1.2.3.4.5.2")
    return out


def image(rows, cols, frames=None, bits=16, samples=1, photometric="MONOCHROME2"):
    out = el(0x0028, 0x0002, "US", struct.pack("<H", samples))
    out += el(0x0028, 0x0004, "CS", photometric)
    if frames is not None:
        out += el(0x0028, 0x0008, "IS", str(frames))
    out += el(0x0028, 0x0010, "US", struct.pack("<H", rows))
    out += el(0x0028, 0x0011, "US", struct.pack("<H", cols))
    out += el(0x0028, 0x0100, "US", struct.pack("<H", bits))
    out += el(0x0028, 0x0101, "US", struct.pack("<H", bits))
    out += el(0x0028, 0x0102, "US", struct.pack("<H", bits - 1))
    out += el(0x0028, 0x0103, "US", struct.pack("<H", 0))
    return out


def nested_undefined(depth):
    # SQ > item > SQ > item … each with undefined length, closed properly.
    opening = (el(0x0040, 0xA730, "SQ", b"", UNDEFINED) + item(b"", UNDEFINED)) * depth
    closing = (ITEM_END + SEQ_END) * depth
    return opening + closing


def nested_defined(depth):
    inner = el(0x0040, 0xA160, "UT", "x")
    for _ in range(depth):
        inner = el(0x0040, 0xA730, "SQ", item(inner))
    return inner


def encapsulated(*fragments, close=True):
    out = el(0x7FE0, 0x0010, "OB", b"", UNDEFINED) + item(b"")
    for f in fragments:
        out += item(f)
    return out + (SEQ_END if close else b"")


def corpus():
    c = {}
    base = meta() + ids()
    px = image(2, 2) + el(0x7FE0, 0x0010, "OW", b"\1\0" * 4)
    c["baseline-valid.dcm"] = base + px
    c["length-far-past-end.dcm"] = base + image(512, 512) + el(0x7FE0, 0x0010, "OW", b"\0" * 16, 0xFFFFFFF0)
    c["text-length-far-past-end.dcm"] = base + el(0x0040, 0xA160, "UT", b"short", 0x7FFFFFF0) + px
    c["meta-length-past-end.dcm"] = meta()[:-30] + el(0x0002, 0x0013, "SH", b"x", 60000)
    c["deeply-nested-sequences.dcm"] = base + nested_undefined(5000) + px
    c["deeply-nested-defined-sequences.dcm"] = base + nested_defined(400) + px
    c["nested-within-limit.dcm"] = base + image(2, 2) + nested_undefined(8) + el(0x7FE0, 0x0010, "OW", b"\1\0" * 4)
    c["item-longer-than-sequence.dcm"] = base + el(0x0040, 0xA730, "SQ", item(b"", 1000), 8) + px
    c["undefined-length-text.dcm"] = base + el(0x0040, 0xA160, "UT", b"abc", UNDEFINED) + px
    c["stray-sequence-end.dcm"] = base + SEQ_END + px
    c["unclosed-sequence.dcm"] = base + image(2, 2) + el(0x0040, 0xA730, "SQ", b"", UNDEFINED) + item(b"", UNDEFINED)
    # A window after the pixel data: a reader that stops at the pixel data
    # would render with another window than one that reads the whole file.
    c["element-after-pixel-data.dcm"] = base + px + el(0x0028, 0x1050, "DS", "40")
    c["duplicate-element.dcm"] = base + el(0x0020, 0x000E, "UI", "1.2.3.4.5.3") + px
    c["pixel-geometry-larger-than-data.dcm"] = base + image(4096, 4096) + el(0x7FE0, 0x0010, "OW", b"\0" * 16)
    c["frame-count-absurd.dcm"] = base + image(16, 16, frames=2147483647) + el(0x7FE0, 0x0010, "OW", b"\0" * 512)
    c["zero-rows.dcm"] = base + image(0, 16) + el(0x7FE0, 0x0010, "OW", b"\0" * 16)
    c["script-in-patient-name.dcm"] = meta() + ids(name="<script>alert(1)</script>^<img src=x onerror=alert(2)>") + px
    sjis = "山田^太郎".encode("shift_jis")
    c["shift-jis-under-iso-ir-13.dcm"] = meta() + ids(name=sjis, charset="ISO_IR 13") + px
    c["shift-jis-undeclared.dcm"] = meta() + ids(name=sjis) + px
    c["utf8-declared-but-latin1.dcm"] = meta() + ids(name="Buc^J\xe9r\xf4me".encode("latin-1"), charset="ISO_IR 192") + px
    c["unknown-charset.dcm"] = meta() + ids(name=b"\xff\xfe\x80\x81", charset="ISO_IR 999") + px
    c["iso2022-broken-escapes.dcm"] = meta() + ids(name=b"\x1b$B;3\x1b\x1b(", charset="\\ISO 2022 IR 87") + px
    c["missing-sop-instance-uid.dcm"] = meta() + ids().replace(el(0x0008, 0x0018, "UI", "1.2.3.4.5.6.7"), b"") + px
    c["missing-modality.dcm"] = meta() + ids().replace(el(0x0008, 0x0060, "CS", "CT"), b"") + px
    c["meta-only.dcm"] = meta()
    c["preamble-only.dcm"] = b"\0" * 128 + b"DICM"
    c["empty.dcm"] = b""
    c["bad-value-representation.dcm"] = base + struct.pack("<HH", 0x0010, 0x1010) + b"\x00\x01" + struct.pack("<H", 2) + b"42" + px
    j2k = image(64, 64)
    c["jpeg2000-garbage.dcm"] = meta(JPEG2000) + ids() + j2k + encapsulated(b"\xff\x4f\xff\x51" + b"\xaa" * 200)
    c["jpeg-garbage.dcm"] = meta(JPEG_BASELINE) + ids() + image(64, 64, bits=8) + encapsulated(b"\xff\xd8\xff\xc0\x00\x11" + b"\x55" * 100)
    rle_header = struct.pack("<16I", 15, *([64] * 15))
    c["rle-bogus-segments.dcm"] = meta(RLE) + ids() + image(64, 64) + encapsulated(rle_header + b"\x7f" * 64)
    c["rle-segment-count-huge.dcm"] = meta(RLE) + ids() + image(64, 64) + encapsulated(struct.pack("<16I", 0x3FFFFFFF, 64, *([0] * 14)) + b"\x7f\x00" * 8)
    c["rle-short-segment.dcm"] = meta(RLE) + ids() + image(64, 64, bits=8) + encapsulated(struct.pack("<16I", 1, 64, *([0] * 14)) + b"\x03abcd")
    c["rle-huge-dimensions.dcm"] = meta(RLE) + ids() + image(65535, 65535) + encapsulated(struct.pack("<16I", 1, 64, *([0] * 14)) + b"\x7f\x00" * 8)
    c["fragment-past-end.dcm"] = meta(RLE) + ids() + image(64, 64) + el(0x7FE0, 0x0010, "OB", b"", UNDEFINED) + item(b"") + item(b"ab", 0x7FFFFF00)
    c["unterminated-fragments.dcm"] = meta(RLE) + ids() + image(64, 64) + encapsulated(b"\0" * 64, close=False)
    c["implicit-vr-length-past-end.dcm"] = meta(IMPLICIT_LE) + implicit(0x0008, 0x0018, b"1.2.3\0") + implicit(0x0010, 0x0010, b"A^B", 0x7FFFFFF0)
    c["implicit-deep-sequences.dcm"] = meta(IMPLICIT_LE) + (implicit(0x0040, 0xA730, b"", UNDEFINED) + item(b"", UNDEFINED)) * 3000
    # The fuzzer's findings with their one stray tag, (14FF,0107) between
    # (0028,0106) and (0028,1050), put back to (0028,0107): in tag order, so
    # intake accepts them and the render-time checks they found are reached.
    for found in ("fuzz-bits-stored-out-of-range.dcm", "fuzz-jpeg2000-larger-than-its-geometry.dcm"):
        with open(os.path.join(HERE, found), "rb") as f:
            data = bytearray(f.read())
        assert data[0x5CE:0x5D2] == struct.pack("<HH", 0x14FF, 0x0107), found
        data[0x5CE:0x5D0] = struct.pack("<H", 0x0028)
        c["ordered-" + found] = bytes(data)
    return c


def main():
    for name in os.listdir(HERE):
        # fuzz-* files are libFuzzer findings, kept as found.
        if name.endswith(".dcm") and not name.startswith("fuzz-"):
            os.remove(os.path.join(HERE, name))
    for name, data in corpus().items():
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
    print(f"{len(corpus())} files")


if __name__ == "__main__":
    main()
