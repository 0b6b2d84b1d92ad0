"""Every openEO error class matches the API's errors.json (code and HTTP status)."""

from __future__ import annotations

import json

import pytest

from processes.core import errors
from tests.conftest import REPO

ERRORS_JSON = REPO.parent / "shared" / "conformance" / "assets" / "openeo-api" / "errors.json"
# Codes that are not in errors.json: HTTP-level errors of this back-end and process-spec exceptions.
OWN_CODES = {"BadRequest", "MethodNotAllowed", "FormatUnsupported", "FormatArgumentInvalid", "NoDataAvailable",
             "DimensionNotAvailable", "DimensionMismatch", "BandNotAvailable", "ParameterValueInvalid",
             "LabelNotAvailable", "TooManyDimensions", "StacSourceInvalid", "UdfFailed", "PayloadTooLarge",
             "ConcurrentJobLimit", "ServiceUnavailable"}


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


def test_unexpected_error_answers_the_id_the_log_records_and_hides_the_exception_text(app, caplog):
    def broken():
        raise RuntimeError("secret internal detail /var/lib/terracube")

    app.add_url_rule("/broken", "broken", broken)
    with caplog.at_level("ERROR", logger="backend.errors"):
        response = app.test_client().get("/broken")
    assert response.status_code == 500
    body = response.json
    assert body["code"] == "Internal"
    assert "secret internal detail" not in body["message"] and "RuntimeError" not in body["message"]
    assert body["id"] in body["message"]
    logged = [r for r in caplog.records if r.exc_info]
    assert logged and body["id"] in logged[0].getMessage()
    assert "secret internal detail" in str(logged[0].exc_info[1])
