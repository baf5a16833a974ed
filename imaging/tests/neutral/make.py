#!/usr/bin/env python3
"""Writes the neutralisation corpus next to this script (issue 26): files that
intake must refuse because of what they carry — a program in a DICOM preamble
(CVE-2019-11687), PDFs with active content (plain, in an object stream, with
#xx-escaped names, inside an Encapsulated PDF DICOM instance), data after a
JPEG's or PNG's end, macro documents renamed to an accepted extension — and
clean files that must still pass. tests/neutral.rs says what must happen to
each. Re-run after changing it: `python3 imaging/tests/neutral/make.py` (the
JPEG is cut out of one of pydicom's test files)."""
import io
import os
import struct
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hostile"))
from make import el, ids, image, meta  # noqa: E402  (the hostile corpus' writers)


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


# --- PDF -------------------------------------------------------------------

def pdf(objects, root=1, version=b"1.7"):
    """A PDF with a classic cross-reference table; `objects` maps numbers to
    bodies (bytes); a body that is a (dict, data) pair becomes a stream."""
    out = b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n"
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        body = objects[num]
        if isinstance(body, tuple):
            d, data = body
            body = d.replace(b">>", b"/Length %d>>" % len(data), 1) + b"\nstream\n" + data + b"\nendstream"
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for num in range(1, size):
        out += b"%010d 00000 n \n" % offsets[num] if num in offsets else b"0000000000 65535 f \n"
    out += b"trailer\n<</Size %d/Root %d 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (size, root, xref)
    return out


def pdf_with_object_stream(plain, packed, root=1):
    """PDF 1.5: objects in `packed` (number -> body) go into one Flate object
    stream, found through a cross-reference stream, as pdfTeX and Acrobat write."""
    stm_num = max(list(plain) + list(packed)) + 1
    xref_num = stm_num + 1
    nums = sorted(packed)
    bodies = [packed[n] for n in nums]
    header, at = b"", 0
    for n, body in zip(nums, bodies):
        header += b"%d %d " % (n, at)
        at += len(body) + 1
    content = header + b"\n".join(bodies) + b"\n"
    stm = zlib.compress(content)
    out = b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n"
    offsets = {}
    for num in sorted(plain):
        offsets[num] = len(out)
        body = plain[num]
        if isinstance(body, tuple):
            d, data = body
            body = d.replace(b">>", b"/Length %d>>" % len(data), 1) + b"\nstream\n" + data + b"\nendstream"
        out += b"%d 0 obj\n" % num + body + b"\nendobj\n"
    offsets[stm_num] = len(out)
    out += b"%d 0 obj\n<</Type/ObjStm/N %d/First %d/Filter/FlateDecode/Length %d>>\nstream\n" % (
        stm_num, len(nums), len(header), len(stm)) + stm + b"\nendstream\nendobj\n"
    xref_at = len(out)
    offsets[xref_num] = xref_at
    rows = b""
    for num in range(0, xref_num + 1):
        if num in offsets:
            rows += struct.pack(">BIH", 1, offsets[num], 0)
        elif num in packed:
            rows += struct.pack(">BIH", 2, stm_num, nums.index(num))
        else:
            rows += struct.pack(">BIH", 0, 0, 65535)
    xdata = zlib.compress(rows)
    out += b"%d 0 obj\n<</Type/XRef/Size %d/W[1 4 2]/Root %d 0 R/Filter/FlateDecode/Length %d>>\nstream\n" % (
        xref_num, xref_num + 1, root, len(xdata)) + xdata + b"\nendstream\nendobj\n"
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return out


PAGE_TEXT = zlib.compress(b"BT /F1 18 Tf 72 720 Td (Referral letter, page 1) Tj ET")
PAGES = {
    2: b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
    3: b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 595 842]/Resources<</Font<</F1 4 0 R>>>>/Contents 5 0 R>>",
    4: b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    5: (b"<</Filter/FlateDecode>>", PAGE_TEXT),
}


def with_catalog(catalog, extra=None):
    objects = dict(PAGES)
    objects[1] = catalog
    objects.update(extra or {})
    return pdf(objects)


JS = b"<</S/JavaScript/JS(app.alert\\(1\\))>>"

CLEAN_PDF = with_catalog(b"<</Type/Catalog/Pages 2 0 R/OpenAction[3 0 R/Fit]>>", {
    6: b"<</Title(Referral \\(clean\\))/Producer(make.py)>>",
    7: (b"<</Type/EmbeddedFont>>", zlib.compress(b"/JS /AA /EF are names a font program may hold")),
})


def pdfs():
    write("clean-text.pdf", CLEAN_PDF)
    write("clean-object-stream.pdf", pdf_with_object_stream(
        {5: PAGES[5]},
        {1: b"<</Type/Catalog/Pages 2 0 R/OpenAction 6 0 R>>", 2: PAGES[2], 3: PAGES[3], 4: PAGES[4],
         6: b"[3 0 R/XYZ 0 842 0]"}))
    write("javascript.pdf", with_catalog(
        b"<</Type/Catalog/Pages 2 0 R/Names<</JavaScript<</Names[(run) 6 0 R]>>>>>>", {6: JS}))
    write("javascript-in-object-stream.pdf", pdf_with_object_stream(
        {5: PAGES[5]},
        {1: b"<</Type/Catalog/Pages 2 0 R/OpenAction 6 0 R>>", 2: PAGES[2], 3: PAGES[3], 4: PAGES[4], 6: JS}))
    write("javascript-escaped-names.pdf", with_catalog(
        b"<</Type/Catalog/Pages 2 0 R/Open#41ction 6 0 R>>",
        {6: b"<</#53/J#61va#53cript/J#53(app.alert\\(1\\))>>"}))
    write("launch.pdf", with_catalog(
        b"<</Type/Catalog/Pages 2 0 R/OpenAction 6 0 R>>",
        {6: b"<</S/Launch/Win<</F(cmd.exe)/P(/c calc)>>>>"}))
    write("open-action.pdf", with_catalog(
        b"<</Type/Catalog/Pages 2 0 R/OpenAction<</S/URI/URI(https://example.invalid/track)>>>>"))
    write("additional-actions.pdf", pdf({
        1: b"<</Type/Catalog/Pages 2 0 R>>", 2: PAGES[2], 4: PAGES[4], 5: PAGES[5],
        3: PAGES[3].replace(b"/Contents 5 0 R", b"/Contents 5 0 R/AA<</O<</S/URI/URI(https://example.invalid/)>>>>"),
    }))
    write("embedded-file.pdf", with_catalog(
        b"<</Type/Catalog/Pages 2 0 R/Names<</EmbeddedFiles<</Names[(setup.exe) 6 0 R]>>>>>>",
        {6: b"<</Type/Filespec/F(setup.exe)/EF<</F 7 0 R>>>>",
         7: (b"<</Type/EmbeddedFile/Filter/FlateDecode>>", zlib.compress(b"MZ\x90\x00"))}))
    write("xfa-form.pdf", with_catalog(
        b"<</Type/Catalog/Pages 2 0 R/AcroForm<</Fields[]/XFA 6 0 R>>>>",
        {6: (b"<<>>", b"<xdp:xdp xmlns:xdp=\"http://ns.adobe.com/xdp/\"></xdp:xdp>")}))


# --- DICOM -----------------------------------------------------------------

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"


def encapsulated_pdf(document):
    body = el(0x0008, 0x0016, "UI", ENCAPSULATED_PDF) + el(0x0008, 0x0018, "UI", "1.2.3.4.5.6.8")
    body += el(0x0008, 0x0060, "CS", "DOC") + el(0x0010, 0x0010, "PN", "Neutral^Test")
    body += el(0x0010, 0x0020, "LO", "N0001") + el(0x0020, 0x000D, "UI", "1.2.3.4.5.1")
    body += el(0x0020, 0x000E, "UI", "1.2.3.4.5.3")
    body += el(0x0042, 0x0011, "OB", document) + el(0x0042, 0x0012, "LO", "application/pdf")
    return meta() + body


def ct(preamble):
    """A small valid CT image whose preamble is `preamble` (padded to 128)."""
    pixels = bytes(range(16)) * 8
    body = ids() + image(8, 8, bits=16) + el(0x7FE0, 0x0010, "OW", pixels)
    return preamble.ljust(128, b"\0") + meta()[128:] + body


# The start of a Windows program: the DOS header (e_lfanew at 0x3C pointing
# past the preamble, where a PE polyglot puts its headers) and the DOS stub.
MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00\xb8" + b"\0" * 7 + b"\x40" + b"\0" * 35
MZ = MZ[:0x3C] + struct.pack("<I", 0x100) + b"\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21"
MZ += b"This program cannot be run in DOS mode.\r\r\n$"


def dicoms():
    write("preamble-windows-program.dcm", ct(MZ[:128]))
    write("preamble-text.dcm", ct(b"#!/bin/sh\nexec sh -c 'echo owned'\n"))
    write("preamble-tiff.dcm", ct(b"II*\0\x08\x00\x00\x00"))
    write("preamble-zeros.dcm", ct(b""))
    write("encapsulated-pdf-javascript.dcm", encapsulated_pdf(open(os.path.join(HERE, "javascript.pdf"), "rb").read()))
    write("encapsulated-pdf-clean.dcm", encapsulated_pdf(CLEAN_PDF))


# --- Images ----------------------------------------------------------------

def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def a_png():
    rows = b"".join(b"\0" + bytes([x * 60 for x in range(4)]) for _ in range(4))
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(rows)) + png_chunk(b"IEND", b""))


def a_jpeg():
    """The baseline JPEG inside one of pydicom's files, cut at its end marker."""
    import pydicom.data
    dcm = open(pydicom.data.get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"), "rb").read()
    start = dcm.index(b"\xff\xd8\xff")
    return dcm[start:dcm.rindex(b"\xff\xd9") + 2]


def zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            z.writestr(name, data)
    return buf.getvalue()


def images():
    jpeg, png = a_jpeg(), a_png()
    write("clean.jpg", jpeg)
    write("clean.png", png)
    write("jpeg-with-appended-zip.jpg", jpeg + zip_bytes([("run.bat", b"calc.exe\r\n")]))
    write("png-with-data-after-iend.png", png + b"<?php system($_GET['c']); ?>")


def renamed():
    # A Word document with macros (.docm) named .pdf: [Content_Types].xml first, as Word writes it.
    write("renamed-macro-document.pdf", zip_bytes([
        ("[Content_Types].xml", b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
         b'<Override PartName="/word/vbaProject.bin" ContentType="application/vnd.ms-office.vbaProject"/></Types>'),
        ("word/document.xml", b"<w:document/>"),
        ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504),
    ]))
    # An OLE compound file (.doc/.xls with macros) named .jpg: its header sector.
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 16 + b"\x3e\x00\x03\x00\xfe\xff\x09\x00\x06\x00"
    write("renamed-ole-document.jpg", header.ljust(512, b"\0") + b"\xff" * 512)


if __name__ == "__main__":
    pdfs()
    dicoms()
    images()
    renamed()
