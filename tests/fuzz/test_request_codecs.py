"""Fuzzing the request codecs: any body decodes to valid float32 input or is a one-line 400/413, never a 500.

The server answers ``InvalidInput`` with HTTP 400 and ``PayloadTooLarge`` with 413, and a V2 body that is not the
Open Inference schema (pydantic's ``ValidationError``) with 400; any other exception escaping a codec is a 500 with
a traceback in the server log. Bodies are built as the server builds them: V1 as the parsed JSON, V2 through
kserve's ``InferenceRequest`` model and ``InferRequest.from_inference_request``.
"""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pydantic
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shopfloor.serving._kserve import InferenceRequest, InferRequest, InvalidInput
from shopfloor.serving.codec import PayloadTooLarge, WindowSpec, decode_v1, decode_v2
from shopfloor.serving.image_codec import ImageSpec, decode_images_v1, decode_images_v2
from tests.fuzz.strategies import NUMBERS, SCALARS, json_like, one_line

SPEC = WindowSpec(window=4, features=["temperature", "pressure", "vibration"], max_batch=3)
N_FEATURES = len(SPEC.features)
FLOAT32_MAX = float(np.finfo(np.float32).max)


def rejected(exc: Exception) -> bool:
    """Whether ``exc`` is an answer the server gives as a one-line 400 or 413."""
    if isinstance(exc, InvalidInput | PayloadTooLarge):
        return one_line(exc.reason, carriage_return=True)
    return isinstance(exc, pydantic.ValidationError | RefusedByKserve)  # the V2 schema: the malformed-body 400


def acceptable_reading(value: object) -> bool:
    """A reading the window codecs must accept: a number float32 holds, NaN, or null."""
    if value is None:
        return True
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        number = float(value)
    except OverflowError:
        return False
    return math.isnan(number) or abs(number) <= FLOAT32_MAX


def expected_windows(values: list) -> np.ndarray:
    """What a valid request decodes to: float32, null as NaN."""
    as_float = [math.nan if v is None else float(v) for v in values]
    return np.array(as_float, dtype=np.float64).astype(np.float32)


def check_windows(result: np.ndarray, n: int) -> None:
    """A decoded batch: float32 [n, window, features], no infinities (NaN is a missing reading)."""
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    assert result.shape == (n, SPEC.window, N_FEATURES)
    assert not np.isinf(result).any()


# --- V1 windows -------------------------------------------------------------------------------------------------

READINGS = st.one_of(NUMBERS, st.none(), st.just(float("nan")))
ODD_READINGS = st.one_of(READINGS, SCALARS, json_like(4))


@st.composite
def v1_windows(draw) -> tuple[list, list, bool]:
    """A V1 ``instances`` list, near-valid: right or off-by-one shapes, row or feature-object windows.

    Returns the instances, the flat readings in [n, window, feature] order, and whether the shape is right.
    """
    n = draw(st.integers(0, SPEC.max_batch + 1))
    readings = ODD_READINGS if draw(st.booleans()) else READINGS
    window = SPEC.window if draw(st.integers(0, 4)) else draw(st.integers(0, SPEC.window + 1))
    features = N_FEATURES if draw(st.integers(0, 4)) else draw(st.integers(0, N_FEATURES + 1))
    grid = [[[draw(readings) for _ in range(features)] for _ in range(window)] for _ in range(n)]
    flat = [v for w in grid for row in w for v in row]
    well_shaped = window == SPEC.window and features == N_FEATURES
    if draw(st.booleans()) and features == N_FEATURES:  # feature objects: {feature: [window values]}
        instances: list = [{f: [row[i] for row in w] for i, f in enumerate(SPEC.features)} for w in grid]
        if instances and draw(st.integers(0, 5)) == 0:  # an unknown feature, a missing one, or a scalar for one
            victim = instances[draw(st.integers(0, len(instances) - 1))]
            feature = draw(st.sampled_from(SPEC.features))
            action = draw(st.sampled_from(["unknown", "missing", "scalar"]))
            if action == "unknown":
                victim["unknown"] = draw(json_like(4))
            elif action == "missing":
                del victim[feature]
            else:
                victim[feature] = draw(SCALARS)
            well_shaped = False
    else:
        instances = grid
    return instances, flat, well_shaped and 1 <= n <= SPEC.max_batch


@given(payload=st.one_of(json_like(), st.builds(lambda v: {"instances": v}, json_like())))
@example(payload={"instances": [[[10**400] * N_FEATURES] * SPEC.window]})  # past float64: was OverflowError, a 500
@example(payload={"instances": [[[1.0, 2.0, 10**400]] + [[1.0] * N_FEATURES] * (SPEC.window - 1)]})
def test_v1_any_json_is_windows_or_a_400(payload: object) -> None:
    try:
        result = decode_v1(payload, SPEC)
    except Exception as exc:
        assert rejected(exc), repr(exc)
    else:
        check_windows(result, len(payload["instances"]))


@given(case=v1_windows())
@example(case=([[[10**400, 1, 1]] + [[1, 1, 1]] * 3], [10**400] + [1] * 11, True))
def test_v1_near_valid_windows_decode_exactly_or_name_the_problem(case: tuple[list, list, bool]) -> None:
    instances, flat, well_shaped = case
    valid = well_shaped and all(acceptable_reading(v) for v in flat)
    try:
        result = decode_v1({"instances": instances}, SPEC)
    except Exception as exc:
        assert rejected(exc), repr(exc)
        assert not valid, f"a valid request was refused: {exc!r}"
    else:
        assert valid, "an invalid request was accepted"
        check_windows(result, len(instances))
        np.testing.assert_array_equal(result.ravel(), expected_windows(flat))


# --- V2 windows -------------------------------------------------------------------------------------------------

SHAPE_DIMS = st.one_of(st.integers(-2, 5), st.sampled_from([SPEC.window, N_FEATURES, 2**31, 2**63, 10**30]))
DATATYPES = st.sampled_from(["FP32", "FP64", "FP16", "INT64", "BYTES", "BOOL", "fp32", ""])


def nest(values: list, shape: list[int]) -> list:
    """``values`` as nested lists of ``shape`` (V2 allows nested tensor data as well as flat)."""
    if len(shape) <= 1:
        return values
    step = len(values) // shape[0]
    return [nest(values[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


@st.composite
def v2_bodies(draw) -> tuple[dict, list, bool]:
    """A V2 body with one window input, near-valid: shapes, datatypes, value counts and values vary."""
    n = draw(st.integers(0, SPEC.max_batch + 1))
    good_shape = [n, SPEC.window, N_FEATURES]
    shape = good_shape if draw(st.integers(0, 3)) else draw(st.lists(SHAPE_DIMS, max_size=4))
    datatype = "FP32" if draw(st.booleans()) else draw(DATATYPES)
    readings = READINGS if draw(st.booleans()) else ODD_READINGS
    count = n * SPEC.window * N_FEATURES if draw(st.integers(0, 3)) else draw(st.integers(0, 40))
    flat = [draw(readings) for _ in range(count)]
    nested = shape == good_shape and n > 0 and draw(st.booleans())
    data = nest(flat, shape) if nested else flat
    name = draw(st.one_of(st.just("window"), st.text(max_size=6)))  # named in errors: "\n" and "\r" too
    tensor = {"name": name, "shape": shape, "datatype": datatype, "data": data}
    extra = [draw(st.fixed_dictionaries({}, optional={"name": st.text(max_size=5), "shape": json_like(4)}))]
    inputs = [tensor] + (extra if draw(st.integers(0, 9)) == 0 else [])
    valid = (
        len(inputs) == 1
        and datatype.upper() in ("FP32", "FP64")  # kserve upper-cases the datatype
        and shape == good_shape
        and 1 <= n <= SPEC.max_batch
        and count == n * SPEC.window * N_FEATURES
        and all(acceptable_reading(v) for v in flat)
    )
    return {"inputs": inputs}, flat, valid


class RefusedByKserve(Exception):
    """kserve's own 400 before our codec runs (FP16 data in JSON); its message is kserve's, not ours."""


def decode_v2_body(body: object, decode, spec) -> np.ndarray:
    """A V2 JSON body through kserve's request model, as the server decodes it."""
    request = InferenceRequest.model_validate(body)
    try:
        infer_request = InferRequest.from_inference_request(request, "fuzz")
    except InvalidInput as exc:
        raise RefusedByKserve(exc.reason) from None
    return decode(infer_request, spec)


@given(case=v2_bodies())
@example(case=({"inputs": [{"name": "w", "shape": [1, 4, 3], "datatype": "FP32", "data": [10**400] * 12}]}, [], False))
@example(case=({"inputs": [{"name": "w", "shape": [1, 4, 3], "datatype": "FP64", "data": [[1, [2]], [3]]}]}, [], False))
def test_v2_near_valid_tensors_decode_exactly_or_name_the_problem(case: tuple[dict, list, bool]) -> None:
    body, flat, valid = case
    try:
        result = decode_v2_body(body, decode_v2, SPEC)
    except Exception as exc:
        assert rejected(exc), repr(exc)
        assert not valid, f"a valid request was refused: {exc!r}"
    else:
        assert valid, "an invalid request was accepted"
        check_windows(result, body["inputs"][0]["shape"][0])
        np.testing.assert_array_equal(result.ravel(), expected_windows(flat))


@given(body=st.one_of(json_like(), st.builds(lambda v: {"inputs": v}, json_like())))
def test_v2_any_json_is_windows_or_a_400(body: object) -> None:
    try:
        result = decode_v2_body(body, decode_v2, SPEC)
    except Exception as exc:
        assert rejected(exc), repr(exc)
    else:
        check_windows(result, result.shape[0])


# --- images -----------------------------------------------------------------------------------------------------

GRAY = ImageSpec(width=4, height=3, mode="L", max_batch=2)
RGB = ImageSpec(width=4, height=3, mode="RGB", max_batch=2)
IMAGE_SPECS = st.sampled_from([GRAY, RGB])


@st.composite
def encoded_images(draw) -> tuple[bytes, tuple[int, int], str]:
    """A real PNG or JPEG (right or wrong size and colour mode), its size and mode."""
    from PIL import Image

    width = draw(st.sampled_from([4, 4, 3, 1]))
    height = draw(st.sampled_from([3, 3, 4, 2]))
    mode = draw(st.sampled_from(["L", "RGB", "RGBA", "P", "1", "I;16"]))
    fmt = draw(st.sampled_from(["PNG", "JPEG"]))
    if fmt == "JPEG" and mode not in ("L", "RGB"):
        fmt = "PNG"
    pixels = draw(st.binary(min_size=width * height * 3, max_size=width * height * 3))
    image = Image.frombytes("RGB", (width, height), pixels).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue(), (width, height), mode


@st.composite
def image_payloads(draw) -> object:
    """One V1 image instance: an encoded image (maybe corrupted), base64 garbage, or pixel lists."""
    kind = draw(st.sampled_from(["image", "truncated", "garbage", "pixels", "json"]))
    if kind in ("image", "truncated"):
        data, _, _ = draw(encoded_images())
        if kind == "truncated":
            cut = draw(st.integers(0, len(data) - 1))
            data = data[:cut] + draw(st.binary(max_size=16))
        text = base64.b64encode(data).decode()
        return draw(st.sampled_from([text, {"b64": text}, {"image_bytes": {"b64": text}}, {"image_bytes": text}]))
    if kind == "garbage":
        raw = draw(st.sampled_from([b"", b"\x89PNG", b"\xff\xd8"])) + draw(st.binary(max_size=64))
        text = draw(st.sampled_from([base64.b64encode(raw).decode(), raw.decode("latin-1")]))
        return draw(st.sampled_from([text, {"image_bytes": {"b64": text}}]))
    if kind == "pixels":
        height = draw(st.sampled_from([3, 3, 2, 0]))
        width = draw(st.sampled_from([4, 4, 5]))
        channels = draw(st.sampled_from([None, 1, 3, 4]))
        value = st.one_of(st.integers(0, 255), st.floats(0, 255), NUMBERS, SCALARS)
        pixel = value if channels is None else st.lists(value, min_size=channels, max_size=channels)
        return draw(st.lists(st.lists(pixel, min_size=width, max_size=width), min_size=height, max_size=height))
    return draw(json_like(10))


def check_images(result: np.ndarray, spec: ImageSpec, n: int) -> None:
    """Decoded images: float32 [n, height, width, channels] on the 0-255 scale."""
    assert isinstance(result, np.ndarray) and result.dtype == np.float32
    assert result.shape == (n, spec.height, spec.width, spec.channels)
    assert np.isfinite(result).all() and result.min() >= 0 and result.max() <= 255


@given(spec=IMAGE_SPECS, instances=st.lists(image_payloads(), max_size=3))
@example(spec=GRAY, instances=[[[10**400] * 4] * 3])  # past float64: was OverflowError, a 500
def test_v1_images_decode_or_name_the_problem(spec: ImageSpec, instances: list) -> None:
    try:
        result = decode_images_v1({"instances": instances}, spec)
    except Exception as exc:
        assert rejected(exc), repr(exc)
    else:
        check_images(result, spec, len(instances))


@given(spec=IMAGE_SPECS, image=encoded_images())
def test_v1_well_formed_images_of_the_right_size_and_mode_decode(spec: ImageSpec, image) -> None:
    data, size, mode = image
    right = size == (spec.width, spec.height) and mode == spec.mode
    try:
        result = decode_images_v1({"instances": [{"image_bytes": {"b64": base64.b64encode(data).decode()}}]}, spec)
    except Exception as exc:
        assert rejected(exc), repr(exc)
        assert not right, f"a valid image was refused: {exc!r}"
    else:
        assert right, f"a {size} {mode} image was accepted for {spec.shape_text}"
        check_images(result, spec, 1)


@st.composite
def v2_image_bodies(draw) -> dict:
    """A V2 image body: BYTES of encoded images (or garbage), or a pixel tensor of some shape and datatype."""
    datatype = draw(st.sampled_from(["BYTES", "UINT8", "FP32", "INT32", "FP64", "INT8", "FP16"]))
    if datatype == "BYTES":
        items = draw(st.lists(st.one_of(image_payloads().filter(lambda v: isinstance(v, str)), SCALARS), max_size=3))
        shape = [len(items)] if draw(st.integers(0, 3)) else draw(st.lists(SHAPE_DIMS, max_size=3))
        data: list = items
    else:
        spec = draw(IMAGE_SPECS)
        n = draw(st.integers(0, 3))
        good = [n, spec.height, spec.width, spec.channels]
        shape = good if draw(st.integers(0, 3)) else draw(st.lists(SHAPE_DIMS, max_size=5))
        count = n * spec.height * spec.width * spec.channels if draw(st.integers(0, 3)) else draw(st.integers(0, 30))
        data = draw(st.lists(st.one_of(st.integers(0, 255), NUMBERS, SCALARS), min_size=count, max_size=count))
    name = draw(st.one_of(st.just("image"), st.text(max_size=6)))
    return {"inputs": [{"name": name, "shape": shape, "datatype": datatype, "data": data}]}


@given(spec=IMAGE_SPECS, body=st.one_of(v2_image_bodies(), json_like()))
@example(spec=GRAY, body={"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [7]}]})
@example(spec=GRAY, body={"inputs": [{"name": "image", "shape": [1, 3, 4], "datatype": "UINT8", "data": [10**400]}]})
@example(spec=GRAY, body={"inputs": [{"name": "image", "shape": [1, 2**63, 4], "datatype": "FP32", "data": [1]}]})
def test_v2_images_decode_or_name_the_problem(spec: ImageSpec, body: object) -> None:
    try:
        result = decode_v2_body(body, decode_images_v2, spec)
    except Exception as exc:
        assert rejected(exc), repr(exc)
    else:
        check_images(result, spec, result.shape[0])


@pytest.mark.parametrize("reading", [10**400, -(10**400), 2**1024])
def test_integers_past_float64_are_a_400_naming_the_reading(reading: int) -> None:
    window = [[1.0] * N_FEATURES for _ in range(SPEC.window)]
    window[2][1] = reading
    with pytest.raises(InvalidInput, match=r"instances\[0\]\[2\]\[1\]"):
        decode_v1({"instances": [window]}, SPEC)
    flat = [1.0] * (SPEC.window * N_FEATURES)
    flat[7] = reading
    body = {"inputs": [{"name": "window", "shape": [1, SPEC.window, N_FEATURES], "datatype": "FP64", "data": flat}]}
    with pytest.raises(InvalidInput, match=r"data\[7\]"):
        decode_v2_body(body, decode_v2, SPEC)
