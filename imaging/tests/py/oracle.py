#!/usr/bin/env python3
"""pydicom's side of the imaging tests and the DICOM benchmark.

  paths                          JSON: pydicom's bundled test and charset folders
  charsets OUT                   copies of pydicom's charset files, with the UIDs and
                                 modality intake requires added (names left as
                                 written), and pydicom's decoding of each name (JSON)
  render FILE FRAME CENTER WIDTH OUT
                                 pydicom's decoding of one frame, modality LUT
                                 (rescale, an RT Dose's Dose Grid Scaling), the
                                 linear window of PS3.3 C.11.2.1.2.1 (LINEAR_EXACT
                                 below a width of 1), MONOCHROME1 inverted: raw
                                 8-bit samples to OUT
  references SPEC OUT            each case of the JSON list SPEC ({file, frame,
                                 center, width}, no window for colour) as `render`
                                 does it, colour as 8-bit RGB, to OUT/<index>.raw;
                                 JSON per case: what pydicom made of it (its error
                                 when it cannot decode the file here) and the
                                 frame's lowest and highest modality values
  meta FILE...                   JSON: pydicom's reading of the fields intake extracts
  without FILE KEYWORD OUT       FILE with one top-level element removed
  study OUT N [SIZE] [PID] [NAME]
                                 a CT study of N slices (SIZE x SIZE, 16-bit signed,
                                 HU with intercept -1024), one series, new UIDs
  multiframe OUT N [SIZE]        one monochrome multi-frame file of N such sections
                                 (the viewer's frame scrolling), new UIDs
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import apply_color_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid


def data_dirs():
    base = os.path.join(os.path.dirname(pydicom.__file__), "data")
    return os.path.join(base, "test_files"), os.path.join(base, "charset_files")


def charsets(out):
    _, cdir = data_dirs()
    os.makedirs(out, exist_ok=True)
    result = []
    for name in sorted(os.listdir(cdir)):
        if not name.endswith(".dcm"):
            continue
        ds = pydicom.dcmread(os.path.join(cdir, name))
        if "PatientName" not in ds:
            continue
        expected = str(ds.PatientName)
        for kw in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            if kw not in ds or not str(getattr(ds, kw)).strip():
                setattr(ds, kw, generate_uid())
        if "Modality" not in ds or not str(ds.Modality).strip():
            ds.Modality = "OT"
        if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
            ds.file_meta = ds.file_meta if hasattr(ds, "file_meta") else FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.MediaStorageSOPClassUID = ds.get("SOPClassUID", "1.2.840.10008.5.1.4.1.1.7")
        ds.save_as(os.path.join(out, name), enforce_file_format=True)
        result.append({"file": name, "patient_name": expected,
                       "charset": list(ds.SpecificCharacterSet) if isinstance(ds.get("SpecificCharacterSet"), pydicom.multival.MultiValue) else str(ds.get("SpecificCharacterSet", ""))})
    print(json.dumps(result, ensure_ascii=False))


def window(values, center, width):
    if 0 < width < 1:
        # LINEAR_EXACT (C.11.2.1.3.2): linear needs a width of at least 1 in
        # the values' units, which a dose map in Gy does not span.
        y = ((values - center) / width + 0.5) * 255.0
        y = np.where(values <= center - width / 2, 0.0, np.where(values > center + width / 2, 255.0, y))
        return np.clip(np.round(y), 0, 255).astype(np.uint8)
    # PS3.3 C.11.2.1.2.1, linear
    width = max(width, 1.0)
    low = center - 0.5 - (width - 1) / 2
    high = center - 0.5 + (width - 1) / 2
    y = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0
    y = np.where(values <= low, 0.0, np.where(values > high, 255.0, y))
    return np.clip(np.round(y), 0, 255).astype(np.uint8)


def frame_of(ds, frame):
    arr = ds.pixel_array
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return arr[frame] if frames > 1 else arr


def modality(ds, arr):
    """Stored values to modality values: rescale, and an RT Dose's Dose Grid
    Scaling (PS3.3 C.8.8.3), which it has instead of a modality LUT."""
    slope = float(ds.get("RescaleSlope", 1) or 1) * float(ds.get("DoseGridScaling", 1) or 1)
    return arr.astype(np.float64) * slope + float(ds.get("RescaleIntercept", 0) or 0)


def grey(ds, arr, center, width):
    g = window(modality(ds, arr), center, width)
    return 255 - g if ds.PhotometricInterpretation == "MONOCHROME1" else g


def rgb8(ds, arr):
    """Colour as 8-bit RGB: the 8 most significant stored bits of each sample
    (pydicom has already converted YBR_FULL and YBR_FULL_422 to RGB), palette
    colour through its lookup tables, 16-bit entries to their high byte."""
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        return (rgb >> (8 if ds.RedPaletteColorLookupTableDescriptor[2] == 16 else 0)).astype(np.uint8)
    bits = int(ds.BitsStored)
    arr = arr.astype(np.uint64) & ((1 << bits) - 1)
    return (arr >> max(bits - 8, 0)).astype(np.uint8)


def render(path, frame, center, width, out):
    ds = pydicom.dcmread(path)
    with open(out, "wb") as f:
        f.write(grey(ds, frame_of(ds, frame), center, width).tobytes())


def references(spec, out):
    os.makedirs(out, exist_ok=True)
    with open(spec) as f:
        cases = json.load(f)
    result = []
    for i, case in enumerate(cases):
        try:
            ds = pydicom.dcmread(case["file"])
            arr = frame_of(ds, case["frame"])
        except Exception as e:  # no decoder here (JPEG, JPEG 2000 need plugins), or a bad file
            result.append({"decoded": False, "error": f"{type(e).__name__}: {e}"})
            continue
        if case.get("center") is None:
            pixels, lo, hi = rgb8(ds, arr), None, None
        else:
            values = modality(ds, arr)
            pixels = grey(ds, arr, case["center"], case["width"])
            lo, hi = float(values.min()), float(values.max())
        with open(os.path.join(out, f"{i}.raw"), "wb") as f:
            f.write(np.ascontiguousarray(pixels).tobytes())
        result.append({"decoded": True, "min": lo, "max": hi})
    print(json.dumps(result))


def phantom(size, z, n):
    """A body-shaped section: soft tissue, two lungs, a spine, a table of air."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    hu = np.full((size, size), -1000.0, dtype=np.float32)
    body = (x / 0.42) ** 2 + (y / 0.32) ** 2 <= 1
    rng = np.random.default_rng(z)
    hu[body] = 40 + 120 * y[body] + rng.normal(0, 25, size=int(body.sum()))
    r = 0.12 + 0.04 * np.sin(np.pi * z / max(n, 1))
    for cx in (-0.17, 0.17):
        hu[((x - cx) / r) ** 2 + ((y + 0.02) / (r * 1.4)) ** 2 <= 1] = -820
    hu[(x ** 2 + (y - 0.2) ** 2) <= 0.045 ** 2] = 700
    hu += (np.sin(x * 40 + z) * 8).astype(np.float32)
    return np.clip(hu + 1024, -32768, 32767).astype(np.int16)


def study(out, n, size=512, pid="0012345", name="Yamada^Tarou=山田^太郎=やまだ^たろう"):
    test_dir, _ = data_dirs()
    template = pydicom.dcmread(os.path.join(test_dir, "CT_small.dcm"))
    os.makedirs(out, exist_ok=True)
    study_uid, series_uid, frame_uid = generate_uid(), generate_uid(), generate_uid()
    for i in range(n):
        ds = template.copy()
        ds.file_meta = FileMetaDataset(template.file_meta)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        sop = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.SOPInstanceUID = sop
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientID = pid
        ds.PatientName = name
        ds.StudyDate = "20261120"
        ds.BodyPartExamined = "CHEST"
        ds.SeriesDescription = "Chest 1.0mm"
        ds.SeriesNumber = 2
        ds.InstanceNumber = i + 1
        ds.SliceLocation = float(i)
        ds.ImagePositionPatient = [-250.0, -250.0, float(i)]
        ds.Rows = size
        ds.Columns = size
        ds.BitsAllocated = 16
        ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = -1024
        ds.RescaleSlope = 1
        ds.WindowCenter = 40
        ds.WindowWidth = 400
        ds.PixelData = phantom(size, i, n).tobytes()
        ds.save_as(os.path.join(out, f"IM{i + 1:05d}.dcm"), enforce_file_format=True)


def multiframe(out, n, size=128):
    test_dir, _ = data_dirs()
    ds = pydicom.dcmread(os.path.join(test_dir, "CT_small.dcm"))
    ds.file_meta = FileMetaDataset(ds.file_meta)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop = generate_uid()
    # Multi-frame Grayscale Word Secondary Capture
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7.3"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientID = "0012345"
    ds.PatientName = "Yamada^Tarou=山田^太郎=やまだ^たろう"
    ds.StudyDate = "20261120"
    ds.SeriesDescription = "Multi-frame"
    ds.SeriesNumber = 3
    ds.InstanceNumber = 1
    ds.NumberOfFrames = n
    ds.Rows = ds.Columns = size
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleIntercept, ds.RescaleSlope = -1024, 1
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = b"".join(phantom(size, z, n).tobytes() for z in range(n))
    ds.save_as(out, enforce_file_format=True)


def meta(paths):
    out = {}
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)

        def text(kw):
            v = ds.get(kw)
            return "" if v is None else str(v).strip()

        def num(kw):
            v = ds.get(kw)
            if v is None or v == "":
                return None
            return float(v[0] if isinstance(v, pydicom.multival.MultiValue) else v)

        date = text("StudyDate")
        out[os.path.basename(p)] = {
            "sop_instance_uid": text("SOPInstanceUID"),
            "study_instance_uid": text("StudyInstanceUID"),
            "series_instance_uid": text("SeriesInstanceUID"),
            "modality": text("Modality"),
            "patient_id": text("PatientID"),
            "patient_name": text("PatientName"),
            "study_date": f"{date[0:4]}-{date[4:6]}-{date[6:8]}" if len(date) >= 8 else None,
            "series_description": text("SeriesDescription"),
            "body_part": text("BodyPartExamined"),
            "instance_number": None if ds.get("InstanceNumber") in (None, "") else int(ds.InstanceNumber),
            "rows": ds.get("Rows"),
            "columns": ds.get("Columns"),
            "frames": int(ds.get("NumberOfFrames", 1) or 1),
            "photometric_interpretation": text("PhotometricInterpretation"),
            "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
            "window_center": num("WindowCenter"),
            "window_width": num("WindowWidth"),
        }
    print(json.dumps(out, ensure_ascii=False))


def without(path, keyword, out):
    ds = pydicom.dcmread(path)
    delattr(ds, keyword)
    ds.save_as(out)


def main():
    cmd = sys.argv[1]
    if cmd == "paths":
        t, c = data_dirs()
        print(json.dumps({"test_files": t, "charset_files": c}))
    elif cmd == "charsets":
        charsets(sys.argv[2])
    elif cmd == "render":
        render(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
    elif cmd == "references":
        references(sys.argv[2], sys.argv[3])
    elif cmd == "meta":
        meta(sys.argv[2:])
    elif cmd == "without":
        without(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "multiframe":
        multiframe(sys.argv[2], int(sys.argv[3]), *([int(sys.argv[4])] if len(sys.argv) > 4 else []))
    elif cmd == "study":
        args = sys.argv[2:]
        study(args[0], int(args[1]), *( [int(args[2])] if len(args) > 2 else []), *args[3:5])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
