"""The openEO error model: one exception class per openEO error code we raise.

Every class carries the openEO ``code`` and the HTTP ``status`` from the API's ``errors.json``
(``tests/unit/test_errors.py`` checks them against it). Messages say what was wrong and how to fix
it. The HTTP layer (``backend/errors.py``) renders any :class:`OpenEOError` as
``{"id", "code", "message", "links"}``; nothing in this module knows about HTTP frameworks.
"""

from __future__ import annotations

import logging
import uuid
from typing import ClassVar


class OpenEOError(Exception):
    """Base of all errors that reach a user as an openEO error document."""

    code: ClassVar[str] = "Internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str, *, node_id: str | None = None):
        super().__init__(message)
        self.message = message
        self.node_id = node_id

    def with_node(self, node_id: str) -> OpenEOError:
        """Remember the process graph node the error happened in (first one wins)."""
        if self.node_id is None:
            self.node_id = node_id
        return self

    def __str__(self) -> str:
        return self.message


def _error(code: str, status: int, doc: str) -> type[OpenEOError]:
    return type(code, (OpenEOError,), {"code": code, "status": status, "__doc__": doc})


# --- general -------------------------------------------------------------------------------------
class Internal(OpenEOError):
    """An unexpected server error; the message names what failed, never the exception's text."""

    code = "Internal"
    status = 500

    def __init__(self, message: str, *, node_id: str | None = None, reference: str | None = None):
        super().__init__(message, node_id=node_id)
        self.reference = reference
        """The id under which the server log records the cause; the error document's ``id``."""


def unexpected_failure(exc: BaseException, what: str, *, node_id: str | None = None) -> Internal:
    """An ``Internal`` error for an unexpected exception: the exception and its traceback go to the
    server log under a fresh reference, the user sees what failed and that reference only."""
    reference = uuid.uuid4().hex
    logging.getLogger("terracube.errors").error("unexpected error %s: %s", reference, what, exc_info=exc)
    return Internal(f"{what} (reference {reference}). The error is logged under this reference; please report "
                    "it to the back-end's operator.", node_id=node_id, reference=reference)


NotFound = _error("NotFound", 404, "The requested resource (URL) does not exist.")
FeatureUnsupported = _error("FeatureUnsupported", 501, "The feature is not supported by this back-end.")
RequestTimeout = _error("RequestTimeout", 408, "The request took longer than the allowed time.")
BadRequest = _error("BadRequest", 400, "The request is malformed (e.g. its body is not valid JSON).")
MethodNotAllowed = _error("MethodNotAllowed", 405, "The HTTP method is not allowed for this URL.")
ContentTypeInvalid = _error("ContentTypeInvalid", 400, "The media type of the request body is not supported.")
PayloadTooLarge = _error("PayloadTooLarge", 413, "The request body is larger than the back-end accepts.")

# --- authentication ------------------------------------------------------------------------------
AuthenticationRequired = _error("AuthenticationRequired", 401, "The request needs an authenticated user.")
AuthenticationSchemeInvalid = _error("AuthenticationSchemeInvalid", 403, "The authentication method is not supported.")
TokenInvalid = _error("TokenInvalid", 403, "The bearer token has expired or is invalid.")
CredentialsInvalid = _error("CredentialsInvalid", 403, "User name or password are not correct.")
ServiceUnavailable = _error("ServiceUnavailable", 503, "A service the back-end depends on (e.g. an OpenID Connect "
                            "provider) cannot be reached; try again later.")

# --- batch jobs ----------------------------------------------------------------------------------
JobNotFound = _error("JobNotFound", 404, "The batch job does not exist.")
JobLocked = _error("JobLocked", 400, "The batch job is queued or running.")
JobNotFinished = _error("JobNotFinished", 400, "The batch job has not finished computing its results.")
PropertyNotEditable = _error("PropertyNotEditable", 400, "A property of the job is read-only.")
ResultLinkExpired = _error("ResultLinkExpired", 410, "The link to the batch job result has expired.")
# not in errors.json: the code openEO back-ends (geopyspark, CDSE) answer and clients recognise
ConcurrentJobLimit = _error("ConcurrentJobLimit", 400, "The user has as many batch jobs queued or running as allowed.")

# --- secondary web services ----------------------------------------------------------------------
ServiceNotFound = _error("ServiceNotFound", 404, "The secondary web service does not exist.")
ServiceUnsupported = _error("ServiceUnsupported", 400, "The secondary web service type is not supported.")
ServiceConfigUnsupported = _error("ServiceConfigUnsupported", 400, "A service configuration setting is not supported.")
ServiceConfigInvalid = _error("ServiceConfigInvalid", 400, "A service configuration value is invalid.")

# --- user code ------------------------------------------------------------------------------------
UdfFailed = _error("UdfFailed", 400, "The user-defined function (run_udf) failed: raised, timed out or crashed.")

# --- user workspace (files) ----------------------------------------------------------------------
FileNotFound = _error("FileNotFound", 404, "The file does not exist in the user's workspace.")
FilePathInvalid = _error("FilePathInvalid", 400, "The file path is invalid.")
FileSizeExceeded = _error("FileSizeExceeded", 400, "The file is larger than the back-end accepts.")
StorageQuotaExceeded = _error("StorageQuotaExceeded", 400, "The user's storage quota is exceeded.")
FileOperationUnsupported = _error("FileOperationUnsupported", 400, "The operation is not supported for this path.")

# --- user-defined processes ---------------------------------------------------------------------
ProcessGraphNotFound = _error("ProcessGraphNotFound", 404, "The user-defined process does not exist.")
PredefinedProcessExists = _error("PredefinedProcessExists", 400, "A predefined process with this id exists.")

# --- data and processes --------------------------------------------------------------------------
CollectionNotFound = _error("CollectionNotFound", 404, "The collection does not exist.")
ProcessUnsupported = _error("ProcessUnsupported", 400, "The process is not available.")
ProcessGraphInvalid = _error("ProcessGraphInvalid", 400, "The process graph is not valid.")
ProcessGraphMissing = _error("ProcessGraphMissing", 400, "The request holds no process graph.")
ProcessGraphComplexity = _error("ProcessGraphComplexity", 400, "The request is too large for synchronous processing.")
ProcessParameterInvalid = _error("ProcessParameterInvalid", 400, "An argument of a process is invalid.")
ProcessParameterRequired = _error("ProcessParameterRequired", 400, "A required argument of a process is missing.")
ProcessParameterUnsupported = _error("ProcessParameterUnsupported", 400, "A process does not have the given parameter.")
FormatUnsupported = _error("FormatUnsupported", 400, "The output format is not supported.")
FormatArgumentInvalid = _error("FormatArgumentInvalid", 400, "An output format option is invalid.")
NoDataAvailable = _error("NoDataAvailable", 400, "No data is available for the requested extent.")
DimensionNotAvailable = _error("DimensionNotAvailable", 400, "A dimension with the given name does not exist.")
DimensionMismatch = _error("DimensionMismatch", 400, "The cube has the wrong number of dimensions for the process.")
BandNotAvailable = _error("BandNotAvailable", 400, "A band with the given name does not exist in the collection.")
ParameterValueInvalid = _error("ParameterValueInvalid", 400, "A process graph parameter has no value.")
LabelNotAvailable = _error("LabelNotAvailable", 400, "A label with the given name does not exist.")
TooManyDimensions = _error("TooManyDimensions", 400, "The data cube has more dimensions than the process supports.")


def parameter_invalid(process: str, parameter: str, reason: str) -> OpenEOError:
    """The ``ProcessParameterInvalid`` error with the spec's message pattern."""
    return ProcessParameterInvalid(
        f"The value passed for parameter '{parameter}' in process '{process}' is invalid: {reason}"
    )


# Process-specific error codes from the process specs' ``exceptions`` (HTTP 400 each). Keyed by
# code so implementations can raise ``process_error("NdviBandAmbiguous", "...")``.
_PROCESS_ERRORS: dict[str, type[OpenEOError]] = {}


def process_error(code: str, message: str) -> OpenEOError:
    """An error with a process-specific openEO code (declared in the process' spec)."""
    known = {cls.code: cls for cls in OpenEOError.__subclasses__()}
    cls = known.get(code) or _PROCESS_ERRORS.get(code)
    if cls is None:
        cls = _PROCESS_ERRORS[code] = _error(code, 400, f"Process error '{code}' (see the process spec).")
    return cls(message)
