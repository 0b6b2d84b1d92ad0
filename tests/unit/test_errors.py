"""Every openEO error class matches the API's errors.json (code and HTTP status)."""

from __future__ import annotations

import json

import pytest

from processes import errors
from tests.conftest import REPO

ERRORS_JSON = REPO.parent / "shared" / "conformance" / "assets" / "openeo-api" / "errors.json"
# Codes that are not in errors.json: HTTP-level errors of this back-end and process-spec exceptions.
OWN_CODES = {"BadRequest", "MethodNotAllowed", "FormatUnsupported", "FormatArgumentInvalid", "NoDataAvailable",
             "DimensionNotAvailable", "DimensionMismatch", "BandNotAvailable", "ParameterValueInvalid",
             "LabelNotAvailable", "TooManyDimensions", "StacSourceInvalid", "UdfFailed"}


def _error_classes():
    return [cls for cls in vars(errors).values()
            if isinstance(cls, type) and issubclass(cls, errors.OpenEOError) and cls is not errors.OpenEOError]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.code)
def test_error_class_matches_errors_json(cls):
    if not ERRORS_JSON.exists():
        pytest.skip(f"needs the openEO API errors.json at {ERRORS_JSON}")
    spec = json.loads(ERRORS_JSON.read_text())
    if cls.code in OWN_CODES:
        assert cls.code not in spec or spec[cls.code]["http"] == cls.status
        return
    assert cls.code in spec, f"{cls.code} is not an openEO API error code"
    assert spec[cls.code]["http"] == cls.status


def test_process_error_reuses_declared_classes():
    assert isinstance(errors.process_error("NoDataAvailable", "x"), errors.NoDataAvailable)
    custom = errors.process_error("NdviBandAmbiguous", "which band?")
    assert custom.code == "NdviBandAmbiguous" and custom.status == 400
    assert type(errors.process_error("NdviBandAmbiguous", "again")) is type(custom)


def test_with_node_keeps_the_first_node():
    err = errors.ProcessParameterInvalid("bad").with_node("a").with_node("b")
    assert err.node_id == "a"
